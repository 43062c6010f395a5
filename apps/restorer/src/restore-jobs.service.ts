import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { Repository, resolveSnapshot } from '@pagevault/repo';
import { restoreSnapshot, writeElfCore, writeRawImages, writeStream } from '@pagevault/restore';
import { Counter, Registry } from 'prom-client';

export interface RestoreJob {
  id: string;
  tenant: string;
  snapshot: string;
  format: 'stream' | 'raw' | 'elf';
  out: string;
  /** Replace an existing output at `out` (default false: the job fails, naming it). */
  replace: boolean;
  state: 'running' | 'done' | 'failed';
  pagesDone: number;
  pagesTotal: number;
  error?: Record<string, unknown>;
  result?: unknown;
  startedAt: string;
  finishedAt?: string;
}

/** Restore jobs run in this process; their progress is kept in memory (bounded to the last 1000). */
@Injectable()
export class RestoreJobsService {
  private readonly jobs = new Map<string, RestoreJob>();
  private readonly done: Counter;

  constructor(@Inject(Repository) private readonly repo: Repository, @Inject(Registry) registry: Registry) {
    this.done = new Counter({ name: 'pagevault_restorer_jobs_total', help: 'restore jobs by outcome', labelNames: ['state', 'format'], registers: [registry] });
  }

  start(req: { tenant: string; snapshot: string; format: string; out: string; replace?: unknown }): RestoreJob {
    if (!['stream', 'raw', 'elf'].includes(req.format)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `format must be stream, raw or elf, not ${req.format}`);
    if (!req.out || !req.out.startsWith('/')) throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'out must be an absolute path on the restorer host');
    const job: RestoreJob = { id: randomUUID(), tenant: req.tenant, snapshot: req.snapshot, format: req.format as RestoreJob['format'], out: req.out, replace: req.replace === true, state: 'running', pagesDone: 0, pagesTotal: 0, startedAt: new Date().toISOString() };
    if (this.jobs.size >= 1000) this.jobs.delete(this.jobs.keys().next().value!);
    this.jobs.set(job.id, job);
    void this.run(job);
    return job;
  }

  get(id: string): RestoreJob {
    const j = this.jobs.get(id);
    if (!j) throw new PvError(ErrorCodes.UNKNOWN_SNAPSHOT, `no restore job ${id}`);
    return j;
  }

  private async run(job: RestoreJob): Promise<void> {
    try {
      const t = await this.repo.tenant(job.tenant);
      const m = await resolveSnapshot(t, job.snapshot); // an id, a prefix or latest[:host=,pid=,tag=]
      job.snapshot = m.snapshotId;
      job.pagesTotal = m.counts.dataPages;
      const frames = restoreSnapshot(t, m, { onProgress: (d) => (job.pagesDone = d) });
      const o = { replace: job.replace };
      job.result = job.format === 'raw' ? await writeRawImages(frames, job.out, o) : job.format === 'elf' ? await writeElfCore(frames, job.out, o) : await writeStream(frames, job.out, o);
      job.state = 'done';
    } catch (e) {
      job.state = 'failed';
      job.error = isPvError(e) ? e.toJSON() : { code: 'PV_INTERNAL', message: String(e) };
    }
    job.finishedAt = new Date().toISOString();
    this.done.inc({ state: job.state, format: job.format });
  }
}
