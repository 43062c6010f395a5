import { ErrorCodes, PvError } from '@pagevault/errors';
import { CompactionService } from '@pagevault/compaction';
import { InProcessFrameLog, type FrameLog } from '@pagevault/framelog';
import { keys, type Manifest, type TenantStore } from '@pagevault/repo';
import { openFrameLog } from '@pagevault/runtime';
import type { Context } from './context';

const WAIT_NOTICE_MS = 5_000;

/**
 * Snapshots whose frames are all in Kafka, not committed yet: a fleet compactor commits them even if this
 * process dies now (what a signal's message must say, not that nothing unfinished is left).
 */
export const shippedUncommitted = new Set<string>();

/** Snapshots this run has seen committed, in order: a run stopped by a signal names them (they stay). */
export const committedThisRun: string[] = [];

/**
 * The stages of one snapshot wired for this invocation. Embedded (no --kafka): an in-process frame log
 * with a CompactionService consuming it in this process — the same code the compactor service runs.
 * With --kafka, frames go to the topic and the fleet's compactors commit them; we wait for the manifest.
 */
export class Pipeline {
  readonly log: FrameLog;
  private compaction: CompactionService | undefined;
  private waiters = new Map<string, { resolve(m: Manifest): void; reject(e: Error): void }>();

  constructor(private readonly ctx: Context) {
    this.log = openFrameLog(ctx.logConfig);
  }

  async start(): Promise<void> {
    await this.log.ensureTopic();
    if (this.ctx.logConfig.kind !== 'memory') return;
    this.compaction = new CompactionService(this.log, this.ctx.repo, {
      groupId: 'embedded',
      events: {
        committed: (m) => {
          committedThisRun.push(m.snapshotId);
          this.waiters.get(m.snapshotId)?.resolve(m);
        },
        failed: (id, code, reason) => this.waiters.get(id)?.reject(new PvError(code as never, reason, { details: { snapshot: id } })),
      },
    });
    await this.compaction.start();
  }

  /** The frames of these snapshots are all in the log (acknowledged): with Kafka they are out of our hands. */
  shipped(ids: readonly string[]): void {
    if (this.compaction) return; // embedded: they die with this process, uncommitted
    for (const id of ids) shippedUncommitted.add(id);
  }

  /**
   * Resolves with the snapshot's manifest once it is durable (or rejects with why it failed). Call it
   * before the frames are produced, so an early commit is not missed.
   */
  committed(snapshotId: string, timeoutMs = 10 * 60_000): Promise<Manifest> {
    if (this.compaction) {
      return new Promise((resolve, reject) => this.waiters.set(snapshotId, { resolve, reject }));
    }
    const p = this.pollManifest(snapshotId, timeoutMs);
    p.then(() => (shippedUncommitted.delete(snapshotId), committedThisRun.push(snapshotId)), () => shippedUncommitted.delete(snapshotId));
    return p;
  }

  private async pollManifest(id: string, timeoutMs: number): Promise<Manifest> {
    const t = await this.ctx.tenant();
    const deadline = Date.now() + timeoutMs;
    // Said once, after a few quiet seconds: a fleet without a running compactor otherwise looks hung.
    const notice = setTimeout(() => {
      process.stderr.write(`pagevault: snapshot ${id}: waiting up to ${timeoutMs / 1000} s for its frames to reach Kafka and a compactor to commit it\n`);
    }, WAIT_NOTICE_MS);
    try {
      return await this.pollUntil(t, id, deadline, timeoutMs);
    } finally {
      clearTimeout(notice);
    }
  }

  private async pollUntil(t: TenantStore, id: string, deadline: number, timeoutMs: number): Promise<Manifest> {
    while (Date.now() < deadline) {
      if (await t.store.head(keys.manifest(t.tenant, id))) return t.getManifest(id);
      const failed = await t.store.head(keys.failed(t.tenant, id));
      if (failed) {
        const f = JSON.parse((await t.store.get(keys.failed(t.tenant, id))).toString()) as { code: string; reason: string };
        throw new PvError(ErrorCodes.SNAPSHOT_FAILED, `snapshot ${id} failed in the compactor: ${f.code}: ${f.reason}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new PvError(ErrorCodes.TIMEOUT, `snapshot ${id} was not committed within ${timeoutMs / 1000} s: is a compactor running?`);
  }

  async stop(): Promise<void> {
    await this.compaction?.stop();
    if (this.log instanceof InProcessFrameLog) this.log.close();
  }
}
