import { type BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import {
  assertProcess, captureGroup, checkTargets, captureSnapshot, cgroupUnderMount, preCopy, type CaptureStats, type GroupTargets, type PageHashKind, type PageHashTable,
} from '@pagevault/capture';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { Consistency, idFromHex, idToHex, newSnapshotId } from '@pagevault/format';
import type { FrameLog } from '@pagevault/framelog';
import { SnapshotStreams, shipSnapshot } from '@pagevault/shipper';
import type { AgentMetrics } from './agent-metrics';
import { HashTables } from './hash-tables';

/** How long a stopping agent waits for its running snapshots to send their abort frames. */
const STOP_WAIT_MS = 10_000;

export const FRAME_LOG = Symbol('frame-log');

export const METRICS = Symbol('agent-metrics');
export const AGENT_CONFIG = Symbol('agent-config');

export interface AgentConfig {
  tenant: string;
  host: string;
  /** Pre-copy stops its live rounds once a round changes at most this many pages (the downtime budget). */
  preCopyBudgetPages: number;
  /** The hash of the page tables kept for incrementals (default: XXH3-128 where the native library is). */
  changeHash?: PageHashKind;
}

export interface SnapshotJob {
  id: string;
  /** The target of a single snapshot; a group's members are in `members`. */
  pid?: number;
  /**
   * A group (one consistent freeze, one snapshot per process, their snapshot-begin groupId = this job's
   * id): the pids, process tree or cgroup asked for.
   */
  group?: GroupTargets;
  /** A group's members once frozen: pid, its snapshot id and, once sent, its capture's stats. */
  members?: { pid: number; snapshot: string; stats?: CaptureStats }[];
  /** While running: capturing (the target frozen unless live) or shipping, and the frames written so far. */
  progress?: { phase: SnapshotStreams['phase']; frames: number; bytes: number };
  mode: 'default' | 'live' | 'pre-copy';
  parent?: string;
  state: 'running' | 'sent' | 'failed';
  stats?: CaptureStats;
  rounds?: number;
  /** Pre-copy: the snapshot id of every round, the last (frozen) one being the consistent snapshot. */
  snapshots?: string[];
  frames?: number;
  bytes?: number;
  error?: Record<string, unknown>;
  startedAt: string;
  finishedAt?: string;
}

/**
 * Runs snapshot jobs: capture → frames → Kafka. Keeps the page hashes of recent snapshots (24 bytes a
 * data page with XXH3, 40 with SHA-256; see HashTables) so the next incremental sends only changed pages;
 * this kernel has no soft-dirty.
 * "sent" means every frame is acknowledged by Kafka; the compactor makes it visible.
 */
@Injectable()
export class SnapshotsService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(SnapshotsService.name);
  private readonly jobs = new Map<string, SnapshotJob>();
  /** Page hashes of recent snapshots, for incrementals against them (256 MiB of tables at most). */
  private readonly lastHashes = new HashTables(256 * 1_048_576);
  /** The streams of running jobs, for their progress. */
  private readonly live = new Map<string, SnapshotStreams>();
  /** Running jobs, and whether the agent is stopping (see beforeApplicationShutdown). */
  private readonly running = new Set<Promise<void>>();
  private stopping: string | undefined;

  constructor(
    @Inject(FRAME_LOG) private readonly log: FrameLog,
    @Inject(METRICS) private readonly metrics: AgentMetrics,
    @Inject(AGENT_CONFIG) private readonly cfg: AgentConfig,
  ) {}

  start(req: { pid: number; mode?: string; parent?: string }): SnapshotJob {
    const mode = (req.mode ?? 'default') as SnapshotJob['mode'];
    if (!['default', 'live', 'pre-copy'].includes(mode)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `mode must be default, live or pre-copy, not ${req.mode}`);
    if (!Number.isSafeInteger(req.pid) || req.pid <= 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `pid must be a positive integer`);
    this.checkParent(req.pid, req.parent);
    assertProcess(req.pid); // what can be known now fails the request, not a job a moment later
    const id = idToHex(newSnapshotId());
    const job: SnapshotJob = { id, pid: req.pid, mode, ...(req.parent ? { parent: req.parent } : {}), state: 'running', startedAt: new Date().toISOString() };
    this.track(job);
    return job;
  }

  /** An incremental's parent: a snapshot of this agent whose page hashes it still holds, of the same pid. */
  private checkParent(pid: number, parent: string | undefined): void {
    if (!parent) return;
    const hashes = this.lastHashes.get(parent);
    if (!hashes) throw new PvError(ErrorCodes.PARENT_MISSING, `this agent holds no page hashes for parent ${parent}; take a full snapshot first`);
    if (hashes.pid !== pid) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `parent ${parent} is a snapshot of pid ${hashes.pid}, not ${pid}`);
  }

  private track(job: SnapshotJob): void {
    if (this.stopping) throw new PvError(ErrorCodes.SNAPSHOT_FAILED, `the agent is stopping (${this.stopping}): no new snapshot`, { retriable: true });
    if (this.jobs.size >= 1000) this.jobs.delete(this.jobs.keys().next().value!);
    this.jobs.set(job.id, job);
    const run = this.run(job).finally(() => this.running.delete(run));
    this.running.add(run);
  }

  /**
   * The agent told to stop (SIGTERM, SIGINT) mid-snapshot: every running stream ends with an abort
   * frame, which goes to Kafka after the frames before it, so the compactor fails the snapshot at once
   * instead of after its timeout. Frozen targets were thawed when the signal came (installThawOnSignals).
   * Waits up to STOP_WAIT_MS for the jobs to send their aborts, then lets the agent exit.
   */
  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.stopping = signal ?? 'shutdown';
    if (this.running.size === 0) return;
    for (const s of this.live.values()) s.abortAll(ErrorCodes.SNAPSHOT_FAILED, `the agent stopped (${this.stopping}) mid-snapshot`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => (timer = setTimeout(r, STOP_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /**
   * A group job: every process of `targets` frozen together, one snapshot each. Frozen only (a live or
   * pre-copy group would not be one instant). `parent` names an earlier group job of this agent: each
   * member whose pid was in it is an incremental against that pid's snapshot there, the others full.
   */
  startGroup(req: { targets: GroupTargets; mode?: string; parent?: string }): SnapshotJob {
    if (req.mode !== undefined && req.mode !== 'default') {
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `a group is captured frozen (mode default); ${req.mode} takes one pid`);
    }
    const t = req.targets;
    if ('pids' in t) {
      if (!Array.isArray(t.pids) || t.pids.length === 0 || !t.pids.every((p) => Number.isSafeInteger(p) && p > 0)) {
        throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'pids must be a non-empty list of positive integers');
      }
      checkTargets(t.pids, { freezing: true });
    } else if ('tree' in t) {
      if (!Number.isSafeInteger(t.tree) || t.tree <= 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'tree must be a positive integer (the root pid)');
      assertProcess(t.tree);
    } else {
      t.cgroup = cgroupUnderMount(t.cgroup);
    }
    if (req.parent && !this.jobs.get(req.parent)?.members) {
      throw new PvError(ErrorCodes.PARENT_MISSING, `no group job ${req.parent} on this agent to be the parent of a group`);
    }
    const id = idToHex(newSnapshotId());
    const job: SnapshotJob = { id, group: t, mode: 'default', ...(req.parent ? { parent: req.parent } : {}), state: 'running', startedAt: new Date().toISOString() };
    this.track(job);
    return job;
  }

  get(id: string): SnapshotJob {
    const j = this.jobs.get(id);
    if (!j) throw new PvError(ErrorCodes.UNKNOWN_JOB, `no snapshot job ${id} on this agent`);
    const s = this.live.get(id);
    return s ? { ...j, progress: { phase: s.phase, frames: s.frames, bytes: s.bytes } } : j;
  }

  private async run(job: SnapshotJob): Promise<void> {
    const producer = this.log.producer();
    const streams = new SnapshotStreams(producer, this.log.maxFrameBytes);
    this.live.set(job.id, streams);
    try {
      if (job.group) {
        await this.group(job, streams);
      } else if (job.mode === 'pre-copy') {
        const r = await this.preCopy(job, streams);
        job.rounds = r.rounds.length;
        job.stats = r.rounds.at(-1)!.stats;
        this.remember(job.snapshots!.at(-1)!, r.hashes);
        this.metrics.observePreCopy(r.rounds.map((x) => x.stats), job.bytes ?? 0);
      } else {
        const parent = job.parent ? { id: idFromHex(job.parent), hashes: this.lastHashes.get(job.parent)! } : undefined;
        const shipped = await shipSnapshot({
          producer, maxFrameBytes: this.log.maxFrameBytes, snapshotId: idFromHex(job.id), streams,
          capture: (writer, drain) => captureSnapshot({
            pid: job.pid!, writer, drain, tenant: this.cfg.tenant, host: this.cfg.host, wantHashes: true,
            ...(this.cfg.changeHash ? { changeHash: this.cfg.changeHash } : {}),
            consistency: job.mode === 'live' ? Consistency.Live : Consistency.Frozen, ...(parent ? { parent } : {}),
          }),
        });
        if (shipped.stats.hashes) this.remember(job.id, shipped.stats.hashes);
        job.stats = shipped.stats.stats;
        job.frames = shipped.frames;
        job.bytes = shipped.bytes;
        this.metrics.observe(shipped.stats.stats, shipped.bytes);
      }
      job.state = 'sent';
    } catch (e) {
      job.state = 'failed';
      job.error = this.stopping
        ? { code: ErrorCodes.SNAPSHOT_FAILED, message: `the agent stopped (${this.stopping}) mid-snapshot: its stream ended with an abort frame`, retriable: true }
        : isPvError(e) ? e.toJSON() : { code: 'PV_INTERNAL', message: String(e) };
      this.metrics.failed(String(job.error['code']));
      const of = job.group ? `group ${JSON.stringify(job.group)}` : `pid ${job.pid}`;
      this.logger.warn(`snapshot ${job.id} of ${of} failed: ${String(job.error['message'])}`);
    } finally {
      job.finishedAt = new Date().toISOString();
      this.live.delete(job.id);
      await producer.close().catch(() => undefined);
    }
  }

  /**
   * Live rounds, each an incremental of the previous, then a frozen final round: each round a snapshot
   * of its own (job.snapshots, the last one the consistent one).
   * Every round is sent under the job's key, so one partition carries them in order and each round's
   * parent is committed before the round is compacted.
   */
  private async preCopy(job: SnapshotJob, streams: SnapshotStreams) {
    const r = await streams.ship(() =>
      preCopy({
        pid: job.pid!, tenant: this.cfg.tenant, host: this.cfg.host, budgetPages: this.cfg.preCopyBudgetPages,
        ...(this.cfg.changeHash ? { changeHash: this.cfg.changeHash } : {}),
        round: () => {
          const id = newSnapshotId();
          const s = streams.open(id, job.id);
          return { writer: s.writer, snapshotId: id, drain: s.drain };
        },
      }),
    );
    job.snapshots = r.rounds.map((x) => idToHex(x.snapshotId));
    job.frames = streams.frames;
    job.bytes = streams.bytes;
    return r;
  }

  /** A group job: frozen together, one stream each, held in the spool until all are read (as one snapshot is). */
  private async group(job: SnapshotJob, streams: SnapshotStreams): Promise<void> {
    const before = job.parent ? this.jobs.get(job.parent)?.members : undefined;
    const members: NonNullable<SnapshotJob['members']> = (job.members = []);
    const done = await streams.ship(() =>
      captureGroup({
        targets: job.group!, groupId: idFromHex(job.id), tenant: this.cfg.tenant, host: this.cfg.host, wantHashes: true,
        ...(this.cfg.changeHash ? { changeHash: this.cfg.changeHash } : {}),
        snapshotFor: (pid) => {
          const s = streams.open(newSnapshotId());
          members.push({ pid, snapshot: s.snapshotId });
          const prev = before?.find((m) => m.pid === pid)?.snapshot;
          const hashes = prev === undefined ? undefined : this.lastHashes.get(prev);
          return { writer: s.writer, drain: s.drain, ...(prev && hashes ? { parent: { id: idFromHex(prev), hashes } } : {}) };
        },
      }),
    );
    for (const { pid, result } of done) {
      const m = members.find((x) => x.pid === pid)!;
      m.stats = result.stats;
      if (result.hashes) this.remember(m.snapshot, result.hashes);
    }
    job.snapshots = members.map((m) => m.snapshot);
    job.frames = streams.frames;
    job.bytes = streams.bytes;
    this.metrics.observeGroup(done.map((d) => d.result.stats), streams.bytes);
  }

  private remember(id: string, h: PageHashTable): void {
    this.lastHashes.keep(id, h);
  }
}
