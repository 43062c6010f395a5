import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { assertProcess } from '@pagevault/capture';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { shown } from '@pagevault/service-kit';
import { Repository, resolveSnapshot, type Manifest, type TenantStore } from '@pagevault/repo';
import { RAW_MARKER, checkOutput, restoreSnapshot, writeElfCore, writeLiveProcess, writeRawImages, writeStream, type SnapshotInput } from '@pagevault/restore';
import { Counter, Registry } from 'prom-client';

export interface RestoreJob {
  id: string;
  tenant: string;
  snapshot: string;
  format: 'stream' | 'raw' | 'elf' | 'live';
  /** The output path on the restorer host (stream, raw, elf). */
  out?: string;
  /** The process on the restorer host the pages are written into (live): prepared with the same layout. */
  pid?: number;
  /** Replace an existing output at `out` (default false: the job fails, naming it). */
  replace: boolean;
  /** Leave out (zeros) pages of mapped files that are gone, shorter or replaced (default false: the job fails, PV_FILE_UNAVAILABLE). */
  allowMissingFiles: boolean;
  state: 'running' | 'done' | 'failed';
  pagesDone: number;
  pagesTotal: number;
  error?: Record<string, unknown>;
  result?: unknown;
  startedAt: string;
  finishedAt?: string;
}

/** Restore jobs run in this process; their progress is kept in memory (bounded to the last 1000). */
/** The body of POST /restores, as sent: checked by start(). */
export interface RestoreRequest {
  tenant?: unknown;
  snapshot?: unknown;
  format?: unknown;
  out?: unknown;
  pid?: unknown;
  replace?: unknown;
  allowMissingFiles?: unknown;
}

/** Nest token of this host's name as pagevault records it (PV_HOST_NAME): see CommonOutputOptions.localHost. */
export const LOCAL_HOST = 'PV_LOCAL_HOST';

@Injectable()
export class RestoreJobsService {
  private readonly logger = new Logger(RestoreJobsService.name);
  private readonly jobs = new Map<string, RestoreJob>();
  private readonly done: Counter;

  constructor(
    @Inject(Repository) private readonly repo: Repository,
    @Inject(Registry) registry: Registry,
    @Inject(LOCAL_HOST) private readonly localHost: string,
  ) {
    this.done = new Counter({ name: 'pagevault_restorer_jobs_total', help: 'restore jobs by outcome', labelNames: ['state', 'format'], registers: [registry] });
  }

  /**
   * Checks the request and resolves its snapshot (so a bad tenant, an unknown snapshot or a wrong field
   * is the request's error, not a job that fails a moment later), then runs the restore in the background.
   */
  async start(req: RestoreRequest): Promise<RestoreJob> {
    const bad = (why: string) => new PvError(ErrorCodes.INVALID_ARGUMENT, why);
    if (typeof req.tenant !== 'string' || typeof req.snapshot !== 'string') throw bad('a restore needs tenant and snapshot (an id, a prefix or latest[:host=,pid=,tag=])');
    const format = req.format as RestoreJob['format'];
    if (!['stream', 'raw', 'elf', 'live'].includes(format)) throw bad(`format must be stream, raw, elf or live, not ${shown(req.format)}`);
    if (req.replace !== undefined && typeof req.replace !== 'boolean') throw bad(`replace must be true or false, not ${shown(req.replace)}`);
    if (req.allowMissingFiles !== undefined && typeof req.allowMissingFiles !== 'boolean') throw bad(`allowMissingFiles must be true or false, not ${shown(req.allowMissingFiles)}`);
    const target: Pick<RestoreJob, 'out' | 'pid'> = {};
    if (format === 'live') {
      if (!Number.isSafeInteger(req.pid) || (req.pid as number) <= 0) throw bad('a live restore needs pid: the process on the restorer host to write into');
      if (req.pid === process.pid) throw bad(`pid ${process.pid} is the restorer itself`);
      if (req.out !== undefined) throw bad('a live restore writes into pid: it takes no out');
      assertProcess(req.pid as number); // gone, a kernel thread, or a thread (of ours, it would stop us)
      target.pid = req.pid as number;
    } else {
      if (typeof req.out !== 'string' || !req.out.startsWith('/')) throw bad('out must be an absolute path on the restorer host');
      if (req.pid !== undefined) throw bad(`a ${format} restore writes to out: it takes no pid`);
      // An output it could not write (exists, a device, missing directory) fails the request, not the job.
      await checkOutput(req.out, format === 'raw' ? 'directory' : 'file', req.replace === true, format === 'raw' ? RAW_MARKER : undefined);
      target.out = req.out;
    }
    const t = await this.repo.tenant(req.tenant);
    const m = await resolveSnapshot(t, req.snapshot, {}, this.leftOut(req.tenant));
    const job: RestoreJob = {
      id: randomUUID(), tenant: req.tenant, snapshot: m.snapshotId, format, ...target, replace: req.replace === true, allowMissingFiles: req.allowMissingFiles === true,
      state: 'running', pagesDone: 0, pagesTotal: m.counts.dataPages, startedAt: new Date().toISOString(),
    };
    if (this.jobs.size >= 1000) this.jobs.delete(this.jobs.keys().next().value!);
    this.jobs.set(job.id, job);
    void this.run(job, t, m);
    return job;
  }

  /**
   * What the restorer does with a damaged manifest it leaves out of a listing or of "latest" (the latest
   * readable snapshot is meant): logs it, once per manifest and process, not on every request.
   */
  leftOut(tenant: string): (e: PvError) => void {
    return (e) => {
      const key = String(e.details['key']);
      if (this.logged.has(key)) return;
      if (this.logged.size >= 10_000) this.logged.clear();
      this.logged.add(key);
      this.logger.error(`tenant ${tenant}: left out a damaged manifest (logged once): ${e.code}: ${e.message}`);
    };
  }

  private readonly logged = new Set<string>();

  get(id: string): RestoreJob {
    const j = this.jobs.get(id);
    if (!j) throw new PvError(ErrorCodes.UNKNOWN_JOB, `no restore job ${id}`);
    return j;
  }

  private async run(job: RestoreJob, t: TenantStore, m: Manifest): Promise<void> {
    try {
      const frames = restoreSnapshot(t, m, { onProgress: (d) => (job.pagesDone = d) });
      job.result = await write(job, frames, this.localHost, m);
      job.state = 'done';
    } catch (e) {
      job.state = 'failed';
      job.error = isPvError(e) ? e.toJSON() : { code: 'PV_INTERNAL', message: String(e) };
    }
    job.finishedAt = new Date().toISOString();
    this.done.inc({ state: job.state, format: job.format });
  }
}

function write(job: RestoreJob, frames: SnapshotInput, localHost: string, m: Manifest): Promise<unknown> {
  const o = { replace: job.replace, onMissingFile: job.allowMissingFiles ? 'allow' : 'fail', localHost } as const;
  switch (job.format) {
    case 'raw':
      return writeRawImages(frames, job.out!, o);
    case 'elf':
      return writeElfCore(frames, job.out!, o);
    case 'stream':
      return writeStream(frames, job.out!, o);
    case 'live':
      return writeLiveProcess(frames, job.pid!, { ...o, layout: m.vmas });
  }
}
