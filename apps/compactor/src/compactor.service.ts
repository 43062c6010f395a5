import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { CompactionService } from '@pagevault/compaction';

export const COMPACTION = Symbol('compaction');

/** Runs the consumer loop for the life of the app: joins the group at bootstrap, leaves at shutdown. */
@Injectable()
export class CompactorRunner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(CompactorRunner.name);
  running = false;

  constructor(@Inject(COMPACTION) private readonly compaction: CompactionService) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.compaction.start();
    this.running = true;
    this.logger.log('consumer group joined');
  }

  async onApplicationShutdown(): Promise<void> {
    this.running = false;
    await this.compaction.stop();
  }
}
