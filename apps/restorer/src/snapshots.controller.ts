import { ErrorCodes, PvError } from '@pagevault/errors';
import { Body, Controller, Get, Inject, Logger, Param, Post, Query, Req, Res } from '@nestjs/common';
import { Repository, listSnapshots, resolveSnapshot, snapshotFilter, type Manifest, type SnapshotFilter, type TaggedManifest } from '@pagevault/repo';
import { restoreFrames } from '@pagevault/restore';
import { Gauge, Registry } from 'prom-client';
import { requestBody } from '@pagevault/service-kit';
import { RestoreJobsService, type RestoreJob, type RestoreRequest } from './restore-jobs.service';

interface Res {
  setHeader(k: string, v: string): void;
  write(b: Buffer): boolean;
  once(ev: 'drain' | 'close', f: () => void): void;
  readonly writableFinished: boolean;
  end(): void;
  destroy(e?: Error): void;
  removeListener(ev: 'drain', f: () => void): void;
}

/** A stream's client that reads nothing for this long is cut off (PV_STREAM_STALL_SECONDS, default 120). */
const STALL_MS = 1000 * Number(process.env['PV_STREAM_STALL_SECONDS'] || 120);

/** Resolves true once `res` drains (or closes: `onWake` gets the resolver), false after STALL_MS without. */
function drained(res: Res, onWake: (r: () => void) => void): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.removeListener('drain', done);
      resolve(true);
    };
    const timer = setTimeout(() => {
      res.removeListener('drain', done);
      resolve(false);
    }, STALL_MS);
    onWake(done);
    res.once('drain', done);
  });
}

@Controller()
export class SnapshotsController {
  private readonly logger = new Logger(SnapshotsController.name);

  private readonly streams: Gauge;

  constructor(
    @Inject(Repository) private readonly repo: Repository,
    @Inject(RestoreJobsService) private readonly jobs: RestoreJobsService,
    @Inject(Registry) registry: Registry,
  ) {
    this.streams = new Gauge({ name: 'pagevault_restorer_streams_active', help: 'snapshot streams being sent', registers: [registry] });
  }

  /**
   * The tenant's snapshots. A damaged manifest does not take the listing down with it: it is left out and
   * logged as an error (fetching it, verifying or restoring it still fails, naming it).
   */
  @Get('tenants/:tenant/snapshots')
  async list(@Param('tenant') tenant: string, @Query() q: Record<string, unknown>): Promise<TaggedManifest[]> {
    return listSnapshots(await this.repo.tenant(tenant), filterOf(q), this.jobs.leftOut(tenant));
  }

  /** `:id` is an id, a unique prefix, or "latest" (narrowed by ?host=, ?pid=, ?tag=, or as latest:tag=...). */
  @Get('tenants/:tenant/snapshots/:id')
  async show(@Param('tenant') tenant: string, @Param('id') id: string, @Query() q: Record<string, unknown>): Promise<Manifest> {
    return resolveSnapshot(await this.repo.tenant(tenant), id, filterOf(q), this.jobs.leftOut(tenant));
  }

  /** The canonical full stream of a snapshot, for a migration target to read as it arrives. */
  @Get('tenants/:tenant/snapshots/:id/stream')
  async stream(@Param('tenant') tenant: string, @Param('id') id: string, @Query() q: Record<string, unknown>, @Req() req: { method: string }, @Res() res: Res): Promise<void> {
    const t = await this.repo.tenant(tenant);
    // A migration target asking for the latest of its pid must get that or an error, never another's.
    const m = await resolveSnapshot(t, id, filterOf(q), this.jobs.leftOut(tenant)); // errors before the first byte map to HTTP statuses
    res.setHeader('X-Pagevault-Snapshot', m.snapshotId);
    res.setHeader('Content-Type', 'application/vnd.pagevault.stream');
    if (req.method === 'HEAD') return res.end(); // the headers only: not a whole snapshot reassembled for nothing
    // A client that goes away mid-stream (a migration target that died) ends the stream: waiting for a
    // drain that never comes would hold the snapshot's fetches and buffers for as long as the process lives.
    // So does one that stops reading and keeps its connection open: after STALL_MS without a drain.
    let gone = false;
    let stalled = false;
    let wake = () => undefined as void;
    res.once('close', () => {
      gone = !res.writableFinished;
      wake();
    });
    this.streams.inc();
    try {
      for await (const f of restoreFrames(t, m)) {
        if (gone) break;
        if (!res.write(f.raw)) stalled = !(await drained(res, (r) => (wake = r)));
        if (stalled) break;
      }
      if (stalled) {
        this.logger.warn(`tenant ${tenant}: the client of the stream of ${m.snapshotId} read nothing for ${STALL_MS / 1000} s: the stream is cut`);
        res.destroy();
      } else if (gone) this.logger.warn(`tenant ${tenant}: the client of the stream of ${m.snapshotId} went away before its end`);
      else res.end();
    } catch (e) {
      // The status line went out with the first bytes: the client learns only that the body ends without a
      // snapshot-end frame. The log says why, naming what is missing or damaged.
      const pv = e instanceof PvError ? e : undefined;
      this.logger.error(`tenant ${tenant}: the stream of ${m.snapshotId} failed after it began: ${pv ? `${pv.code}: ` : ''}${e instanceof Error ? e.message : String(e)}`);
      res.destroy(e as Error); // a truncated body never ends with a snapshot-end frame
    } finally {
      this.streams.dec();
    }
  }

  /** 201 once the request is checked and its snapshot found: what can be known before it runs fails it, with 4xx. */
  @Post('restores')
  start(@Body() body: unknown): Promise<RestoreJob> {
    return this.jobs.start(requestBody<RestoreRequest>(body, ['tenant', 'snapshot', 'format', 'out', 'pid', 'replace', 'allowMissingFiles']));
  }

  @Get('restores/:id')
  job(@Param('id') id: string): RestoreJob {
    return this.jobs.get(id);
  }
}

/** The ?host= ?pid= ?tag= filter of a request; any other key (a misspelt `PID`, `pid[]`) is refused, not dropped. */
function filterOf(q: Record<string, unknown>): SnapshotFilter {
  const unknown = Object.keys(q).filter((k) => !['host', 'pid', 'tag'].includes(k));
  if (unknown.length) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: host, pid, tag)`, { details: { unknown } });
  return snapshotFilter(q as { host?: string; pid?: string; tag?: string });
}
