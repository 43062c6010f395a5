import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { CompactionService } from '@pagevault/compaction';

export const COMPACTION = Symbol('compaction');
/** What must be there before the group is joined (the topics), and what to do if it cannot be. */
export const STARTUP = Symbol('startup');

export interface Startup {
  prepare: () => Promise<unknown>;
  /** The consumer could not start (Kafka unreachable past its retries): the service is of no use. */
  fatal: (e: unknown) => void;
}

/**
 * Runs the consumer loop for the life of the app: joins the group once the app is up, leaves at
 * shutdown. Joining runs in the background, so /healthz and /readyz (which names Kafka) answer while
 * the broker is not there yet, instead of nothing answering until the start gives up.
 */
@Injectable()
export class CompactorRunner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(CompactorRunner.name);
  running = false;
  private stopping = false;
  private starting: Promise<void> | undefined;

  constructor(
    @Inject(COMPACTION) private readonly compaction: CompactionService,
    @Inject(STARTUP) private readonly startup: Startup,
  ) {}

  onApplicationBootstrap(): void {
    this.starting = (async () => {
      await this.startup.prepare();
      if (this.stopping) return;
      await this.compaction.start();
      this.running = true;
      this.logger.log('consumer group joined');
    })();
    this.starting.catch((e: unknown) => {
      if (!this.stopping) this.startup.fatal(e);
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.running = false;
    await this.compaction.stop();
  }
}
