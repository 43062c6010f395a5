import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { FrameType, HEADER_BYTES, MAGIC, SNAPSHOT_ID_BYTES, decodeFrame, type Frame } from '@pagevault/format';
import type { BatchControl, FrameBatch, FrameConsumer, FrameLog, FrameRecord } from '@pagevault/framelog';
import { forEachLimited } from '@pagevault/objstore';
import { checkTenant, keys, SnapshotIngest, type Manifest, type Repository } from '@pagevault/repo';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { OffsetTracker } from './offset-tracker';

/**
 * The longest a batch runs without letting the event loop turn. Frames are handled in promise jobs that
 * never give I/O a turn by themselves: a 32 MiB batch ran ~100 ms at a stretch, and every step of the
 * pack uploads behind it (open, write, fsync, rename; or the S3 request's socket) waited that long.
 */
const TURN_MS = 4;

/** Timed-out snapshots failed at once (their failed records written in parallel). */
const EXPIRE_CONCURRENCY = 16;

export interface CompactionEvents {
  committed?(m: Manifest, latencyMs: number): void;
  failed?(snapshotId: string, code: string, reason: string): void;
  frames?(n: number, bytes: number): void;
}

export interface CompactionOptions {
  groupId: string;
  /**
   * A snapshot with no frame for this long is failed as never-ended (default 5 min). Time the consumer
   * spends in frames (a store call retrying, a wait for a prune to release a tenant) does not count.
   */
  snapshotTimeoutMs?: number;
  maxFrameBytes?: number;
  /**
   * Snapshots open at once (begun, not ended) past which a new one is failed at its begin (default
   * 10,000). Each holds ~20 KiB until its end or its timeout; without a bound, a producer that only
   * begins snapshots grows the compactor's memory without end.
   */
  maxOpenSnapshots?: number;
  /**
   * Where offending records go (the dead-letter topic; see DeadLetters), with the id of the snapshot they
   * were failed for ('' when the record names none); awaited before the offset moves past them.
   */
  deadLetter?: (record: FrameRecord, snapshotId: string, code: string, reason: string) => Promise<void>;
  events?: CompactionEvents;
}

interface Open {
  ingest: SnapshotIngest;
  partition: number;
  firstOffset: string;
  /** The free clock (see free) when its last frame was done, or when it began. */
  lastSeen: number;
  startedAt: number;
  /** A frame of it is being ingested (never expired meanwhile, however long the store takes). */
  busy: boolean;
  /** The highest offset of its frames taken so far, and of those taken before it was last dropped (a replay). */
  upTo: bigint;
  replayedUpTo: bigint;
}

/**
 * The compactor's consumer loop. Snapshots interleave on a partition; each gets a SnapshotIngest.
 * A partition's committed offset never passes the first frame of a snapshot that is still open, so a crash
 * or rebalance replays every unfinished snapshot from its begin into the same content-addressed objects;
 * a replayed snapshot whose manifest already exists is skipped. A bad snapshot is failed on its own
 * (failed record + dead letter) and the partition keeps going.
 */
export class CompactionService {
  private consumer: FrameConsumer | undefined;
  private readonly open = new Map<string, Open>();
  /** Snapshots known finished (committed or failed): their stray frames are dropped. Bounded. */
  private readonly finished = new Map<string, 'committed' | 'failed'>();
  private readonly offsets = new OffsetTracker();
  /** The batch in progress on each partition: a snapshot waiting for a tenant lock heartbeats through it. */
  private readonly batches = new Map<number, BatchControl>();
  /**
   * Open snapshots dropped for a replay (a rebalance, a store outage), by id: their clocks and how far
   * their frames had come, so frames delivered again do not restart the clock, and a stream whose agent
   * died still expires however often its partition is replayed. Bounded; gone once they end.
   */
  private readonly dropped = new Map<string, { lastSeen: number; upTo: bigint; startedAt: number }>();
  /** Frames being ingested now; since when at least one has been; the ms spent so before that (see free). */
  private busyFrames = 0;
  private busySince = 0;
  private busyMs = 0;
  private stopping = false;
  private readonly timeoutMs: number;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: FrameLog,
    private readonly repo: Repository,
    private readonly opts: CompactionOptions,
  ) {
    this.timeoutMs = opts.snapshotTimeoutMs ?? 5 * 60_000;
  }

  get openSnapshots(): number {
    return this.open.size;
  }

  /** Records of the topic this group has not committed past, over all partitions (consumer lag). */
  async lag(): Promise<bigint> {
    if (!this.consumer) return 0n;
    const [ends, committed] = await Promise.all([this.log.endOffsets(), this.consumer.committed()]);
    let lag = 0n;
    for (const [p, end] of ends) {
      // A partition never committed lags by everything still in it (Kafka may have deleted older records).
      const from = committed.get(p);
      lag += from === undefined ? BigInt(end) : BigInt(end) - BigInt(from);
    }
    return lag;
  }

  async start(): Promise<void> {
    this.consumer = this.log.consumer(this.opts.groupId);
    await this.consumer.start({
      onBatch: (b, ctl) => this.onBatch(b, ctl),
      onAssign: () => {
        // Everything in memory may be redelivered from the committed offsets: start clean.
        void this.drop();
        this.offsets.clear();
      },
    });
    // A partition whose agent died mid-stream may see no record again for a long time: snapshots are
    // expired on a timer too, not only when a batch arrives (the offset moves with the next batch).
    this.sweeper = setInterval(() => {
      this.sweeping = this.sweeping.then(() => this.sweep()).catch(() => undefined);
    }, Math.max(50, Math.min(30_000, this.timeoutMs / 4)));
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    await this.sweeping;
    this.stopping = true; // the batch in progress ends at its next record
    const stopped = this.consumer?.stop();
    // Unfinished snapshots are replayed by whoever consumes next: their locks go now, and a snapshot
    // waiting for a prune stops waiting (the batch would otherwise hold the stop up until the prune ends).
    await this.drop();
    await stopped;
  }

  /** Forgets the open snapshots (of one partition, or all) and gives back their tenant locks. */
  private async drop(partition?: number): Promise<void> {
    const gone = [...this.open].filter(([, o]) => partition === undefined || o.partition === partition);
    for (const [id, o] of gone) {
      this.open.delete(id);
      if (this.dropped.size >= 100_000) this.dropped.delete(this.dropped.keys().next().value!);
      this.dropped.set(id, { lastSeen: o.lastSeen, upTo: o.upTo > o.replayedUpTo ? o.upTo : o.replayedUpTo, startedAt: o.startedAt });
    }
    await Promise.all(gone.map(([, o]) => o.ingest.release()));
  }

  /**
   * A snapshot's begin waits for a prune to release its tenant: the partition's batch stalls, as it does
   * while the store retries, and the group must still hear from us. (The snapshots held up behind it do
   * not age meanwhile: the wait is inside a frame, when the free clock stands still.)
   */
  private async lockWait(partition: number): Promise<void> {
    await this.batches.get(partition)?.heartbeat().catch(() => undefined);
  }

  pause(): void {
    this.consumer?.pause();
  }

  resume(): void {
    this.consumer?.resume();
  }

  private async onBatch(batch: FrameBatch, ctl: BatchControl): Promise<void> {
    let bytes = 0;
    this.batches.set(batch.partition, ctl);
    let turned = performance.now();
    try {
      for (const rec of batch.records) {
        if (ctl.isStale() || this.stopping) return;
        bytes += rec.value.length;
        await this.onRecord(rec);
        this.offsets.seen(rec.partition, rec.offset);
        if (performance.now() - turned > TURN_MS) {
          await nextTurn();
          // Tells the group this member is alive (kafkajs sends one at most every heartbeat interval), and
          // learns when it is not a member anymore: the batch is then stale and ends at the next record.
          await ctl.heartbeat().catch(() => undefined);
          turned = performance.now();
        }
      }
      await this.expire(batch.partition);
      this.opts.events?.frames?.(batch.records.length, bytes);
      const next = this.offsets.committable(batch.partition, [...this.open.values()]);
      if (next !== undefined) await ctl.commit(batch.partition, next);
    } catch (e) {
      // The store is down, a lock was lost, or the offset could not be committed: the partition is
      // delivered again from its committed offset, which is at or before every open snapshot's begin,
      // so each of them starts afresh.
      await this.drop(batch.partition);
      throw e;
    }
  }

  private async onRecord(rec: FrameRecord): Promise<void> {
    // The record key is a partition key (the snapshot id, or one id for snapshots that must stay in
    // order); the snapshot a frame belongs to is the id in its header, once its CRC has been checked.
    let frame: Frame;
    try {
      frame = decodeFrame(rec.value, this.opts.maxFrameBytes ?? this.log.maxFrameBytes);
    } catch (e) {
      // Failed for the snapshot its header names, else its key — when that is a snapshot id at all.
      const header = headerSnapshotId(rec.value);
      const id = header ?? (SNAPSHOT_ID_HEX.test(rec.key) ? rec.key : '');
      if (id === '') return this.unidentified(rec, e); // no snapshot to fail
      const how = this.finished.get(id);
      if (how && header !== undefined) return; // its own bad frame again (a replay): dead-lettered when it failed it
      if (how) {
        // Not a frame at all, under the key of a snapshot that has ended: dead-lettered, the snapshot left as it ended.
        const err = asPvError(e);
        return this.opts.deadLetter?.(rec, id, err.code, `${err.message} (snapshot ${id} had ${how} already)`);
      }
      return this.fail(id, rec, e, this.open.get(id)?.ingest.tenantName);
    }
    const id = Buffer.from(frame.snapshotId).toString('hex');
    if (this.finished.has(id)) return;
    let o = this.open.get(id);
    if (o && o.partition !== rec.partition) {
      // Its frames are ordered on one partition only, and only that partition's offset waits for its end.
      return this.fail(id, rec, new PvError(ErrorCodes.STREAM_ORDER, `snapshot ${id}: frame ${frame.sequence} came on partition ${rec.partition}, its begin on partition ${o.partition}: a snapshot's frames must all go under one key`), o.ingest.tenantName);
    }
    if (!o) {
      if (await this.alreadyDone(id, frame.body.type === FrameType.SnapshotBegin ? frame.body.begin.tenant : undefined)) return;
      if (frame.body.type !== FrameType.SnapshotBegin && frame.body.type !== FrameType.Abort) {
        return this.fail(id, rec, new PvError(ErrorCodes.STREAM_ORDER, `snapshot ${id}: frame ${frame.sequence} arrived without its snapshot-begin`));
      }
      const maxOpen = this.opts.maxOpenSnapshots ?? 10_000;
      if (frame.body.type === FrameType.SnapshotBegin && this.open.size >= maxOpen) {
        const tenant = frame.body.begin.tenant;
        return this.fail(id, rec, new PvError(ErrorCodes.SNAPSHOT_FAILED, `snapshot ${id}: ${this.open.size} snapshots are open on this compactor, its limit (maxOpenSnapshots): refused at its begin`), isValidTenant(tenant) ? tenant : undefined);
      }
      const ingest = new SnapshotIngest(this.repo, frame.snapshotId, { onLockWait: () => this.lockWait(rec.partition) });
      const before = this.dropped.get(id);
      o = {
        ingest, partition: rec.partition, firstOffset: rec.offset, lastSeen: before?.lastSeen ?? this.free(), startedAt: before?.startedAt ?? Date.now(), busy: false,
        upTo: -1n, replayedUpTo: before?.upTo ?? -1n,
      };
      this.open.set(id, o);
    }
    o.busy = true; // not expired while busy; lastSeen is set when the frame is done
    if (this.busyFrames++ === 0) this.busySince = Date.now();
    try {
      const m = await o.ingest.accept(frame);
      if (m) {
        this.done(id, 'committed');
        this.opts.events?.committed?.(m, Date.now() - o.startedAt);
      }
    } catch (e) {
      if (this.open.get(id) !== o) return; // dropped meanwhile (rebalance, stop): replayed by whoever consumes next
      if (!isPvError(e) || e.retriable) throw e; // a store outage: onBatch drops the partition for a replay
      await this.fail(id, rec, e, o.ingest.tenantName);
    } finally {
      o.busy = false;
      if (--this.busyFrames === 0) this.busyMs += Date.now() - this.busySince;
      const offset = BigInt(rec.offset);
      if (offset > o.upTo) o.upTo = offset;
      if (offset > o.replayedUpTo) o.lastSeen = this.free(); // a frame delivered again is not news of the stream
    }
  }

  /**
   * A clock that stands still while frames are being ingested: the time the consumer was free to take the
   * next frame. A snapshot's timeout runs on it, so a store call that retries through an outage for minutes
   * (or a backlog of other snapshots' frames) does not age the snapshots whose frames wait behind it, on
   * its partition or, when the consumer takes one batch at a time, on every partition.
   */
  private free(): number {
    const now = Date.now();
    return now - this.busyMs - (this.busyFrames > 0 ? now - this.busySince : 0);
  }

  /**
   * A replay after a crash may meet snapshots that were committed or failed before it. A snapshot-begin
   * names its tenant: two HEADs (a tenant the repository refuses has nothing stored). Only a frame that
   * comes without its begin (the begin was before the committed offset) needs every tenant, by a listing
   * of the whole bucket — which must not be paid for every new snapshot.
   */
  private async alreadyDone(id: string, tenant?: string): Promise<boolean> {
    const tenants = tenant === undefined ? await this.repo.listTenants() : isValidTenant(tenant) ? [tenant] : [];
    for (const t of tenants) {
      if (await this.repo.store.head(keys.manifest(t, id))) return this.done(id, 'committed'), true;
      if (await this.repo.store.head(keys.failed(t, id))) return this.done(id, 'failed'), true;
    }
    return false;
  }

  private async unidentified(rec: FrameRecord, e: unknown): Promise<void> {
    const err = asPvError(e);
    const key = rec.key === '' ? 'without a key' : `under key ${JSON.stringify(rec.key.slice(0, 64))}, not a snapshot id,`;
    await this.opts.deadLetter?.(rec, '', err.code, `record ${key} at ${rec.partition}/${rec.offset}: ${err.message}`);
  }

  private async fail(id: string, rec: FrameRecord, e: unknown, tenant?: string): Promise<void> {
    const err = asPvError(e);
    const o = this.open.get(id);
    await this.opts.deadLetter?.(rec, id, err.code, err.message);
    let reason = err.message;
    if (tenant) {
      const t = await this.repo.tenant(tenant);
      try {
        await t.putFailed({
          format: 'pagevault.failed.v1', snapshotId: id, tenant, code: err.code, reason: err.message,
          failedAtMs: Date.now(), partition: rec.partition, ...(o ? { firstOffset: o.firstOffset } : {}),
        });
      } catch (pe) {
        if (isPvError(pe) && pe.retriable) {
          // The store is down: the failure is not recorded yet, so the snapshot has not ended. A batch
          // stops here and its partition is delivered again (onBatch); the sweeper tries again later.
          this.finished.delete(id);
          throw pe;
        }
        // The store refuses this record for good (a full disk, as the failure itself often is): the
        // snapshot still ends here, failed for its own cause. No record says so, and no manifest says
        // otherwise; a replay would only feed its frames to a snapshot that has ended.
        reason += ` (its failed record could not be stored either: ${(pe as Error).message})`;
      }
    }
    await o?.ingest.release(); // held until the failed record is written
    this.done(id, 'failed');
    this.opts.events?.failed?.(id, err.code, reason);
  }

  private done(id: string, how: 'committed' | 'failed'): void {
    this.open.delete(id);
    this.dropped.delete(id);
    if (this.finished.size > 100_000) this.finished.delete(this.finished.keys().next().value!);
    this.finished.set(id, how);
  }

  /**
   * The timer's expiry. A partition whose open snapshot it failed may see no batch for a long time, and
   * only a batch commits: its offset (and the lag the group reports) would stay at the failed snapshot's
   * begin until then. So it commits what the last batch's control allows, unless that batch went stale
   * (revoked, stopping); a failed commit is left to the next batch.
   */
  private async sweep(): Promise<void> {
    for (const p of await this.expire()) {
      const ctl = this.batches.get(p);
      const next = this.offsets.committable(p, [...this.open.values()]);
      if (ctl && !ctl.isStale() && next !== undefined) await ctl.commit(p, next).catch(() => undefined);
    }
  }

  /**
   * Fails snapshots (of one partition, or all) whose frames stopped coming (an agent died mid-stream).
   * Returns the partitions it failed some on.
   */
  private async expire(partition?: number): Promise<Set<number>> {
    const expired = new Set<number>();
    const now = this.free();
    const due = [...this.open].filter(([, o]) => (partition === undefined || o.partition === partition) && !o.busy && now - o.lastSeen >= this.timeoutMs);
    // Their failed records are written EXPIRE_CONCURRENCY at a time: one at a time, 2,000 snapshots an
    // agent fleet left open took ~24 s to fail. A store error rejects: the rest are tried at the next sweep.
    await forEachLimited(due, EXPIRE_CONCURRENCY, async ([id, o]) => {
      // Finished meanwhile, or being failed by another expire() (the timer's and a batch's can overlap).
      if (this.open.get(id) !== o || this.finished.has(id)) return;
      this.finished.set(id, 'failed'); // a straggler frame arriving while this runs is dropped
      const rec: FrameRecord = { key: id, value: Buffer.alloc(0), partition: o.partition, offset: o.firstOffset };
      await this.fail(id, rec, new PvError(ErrorCodes.TIMEOUT, `snapshot ${id}: no frame for ${Math.round((now - o.lastSeen) / 1000)} s while the compactor was free to take one, its end never came`), o.ingest.tenantName);
      expired.add(o.partition);
    });
    return expired;
  }
}

function asPvError(e: unknown): PvError {
  return isPvError(e) ? e : new PvError(ErrorCodes.SNAPSHOT_FAILED, String(e), { cause: e });
}

function isValidTenant(t: string): boolean {
  try {
    return checkTenant(t) === t;
  } catch {
    return false;
  }
}

/** A snapshot id as record keys carry it: 32 lower-case hex digits. */
const SNAPSHOT_ID_HEX = /^[0-9a-f]{32}$/;

/** The snapshot id of a frame whose body is bad but whose header still starts with the magic. */
function headerSnapshotId(b: Buffer): string | undefined {
  if (b.length < HEADER_BYTES || b.compare(MAGIC, 0, 4, 0, 4) !== 0) return undefined;
  return b.subarray(16, 16 + SNAPSHOT_ID_BYTES).toString('hex');
}
