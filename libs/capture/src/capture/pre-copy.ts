import { ErrorCodes, PvError } from '@pagevault/errors';
import { Consistency, type SnapshotWriter } from '@pagevault/format';
import type { PageHashTable } from '../dirty/page-hash-table';
import { systemPageSize } from '../memory/libc';
import { captureSnapshot } from './capture-snapshot';
import type { CaptureOptions, CaptureParent, CaptureStats } from './options';

export interface PreCopyRound {
  writer: SnapshotWriter;
  /** The id the writer was built with: the next round names it as its parent. */
  snapshotId: Uint8Array;
  drain?: () => Promise<void>;
}

export interface PreCopyOptions extends Omit<
  CaptureOptions,
  'writer' | 'drain' | 'consistency' | 'parent' | 'wantHashes'
> {
  /** Called for each round (1-based) to get that round's writer. */
  round: (n: number) => PreCopyRound;
  /** Make round 1 incremental against an earlier snapshot. */
  parent?: CaptureParent;
  /**
   * The downtime budget: stop running rounds once a round changes at most this many pages (or bytes,
   * with budgetBytes; give one of the two).
   */
  budgetPages?: number;
  budgetBytes?: number;
  /** Most live rounds before the final frozen one (default 5). */
  maxRounds?: number;
}

export interface PreCopyRoundStats {
  round: number;
  consistency: Consistency;
  snapshotId: Uint8Array;
  /** Pages sent as data in the round: what changed since the previous round (everything in round 1). */
  changedPages: number;
  stats: CaptureStats;
}

export interface PreCopyResult {
  rounds: PreCopyRoundStats[];
  stoppedBecause: 'budget' | 'not-shrinking' | 'max-rounds';
  /** Hashes after the final round: the parent for a later incremental. */
  hashes: PageHashTable;
}

/**
 * Iterative pre-copy for live migration: live rounds (the first full, each later one an incremental of
 * the previous, carrying only what changed), until the changed set fits the budget, stops shrinking, or
 * maxRounds is reached; then a final frozen round (consistency PreCopy) whose length is the downtime.
 */
export async function preCopy(opts: PreCopyOptions): Promise<PreCopyResult> {
  const maxRounds = opts.maxRounds ?? 5;
  const budget = opts.budgetPages ?? Math.floor((opts.budgetBytes ?? NaN) / systemPageSize());
  if (!(budget >= 0) || !Number.isInteger(maxRounds) || maxRounds < 1) {
    throw new PvError(
      ErrorCodes.INVALID_ARGUMENT,
      'preCopy needs budgetPages or budgetBytes >= 0 and maxRounds >= 1',
    );
  }
  const rounds: PreCopyRoundStats[] = [];
  let parent = opts.parent;
  let previous = Infinity;
  let stoppedBecause: PreCopyResult['stoppedBecause'] = 'max-rounds';
  const base = {
    ...opts,
    round: undefined,
    budgetPages: undefined,
    budgetBytes: undefined,
    maxRounds: undefined,
  };
  const run = async (n: number, consistency: Consistency): Promise<PageHashTable> => {
    const r = opts.round(n);
    const res = await captureSnapshot({
      ...base,
      writer: r.writer,
      drain: r.drain,
      consistency,
      parent,
      wantHashes: true,
    });
    const changedPages = res.stats.dataPages;
    rounds.push({ round: n, consistency, snapshotId: r.snapshotId, changedPages, stats: res.stats });
    parent = { id: r.snapshotId, hashes: res.hashes! };
    return res.hashes!;
  };
  for (let n = 1; n <= maxRounds; n++) {
    await run(n, Consistency.Live);
    const changed = rounds.at(-1)!.changedPages;
    if (changed <= budget) {
      stoppedBecause = 'budget';
      break;
    }
    if (n > 1 && changed >= previous) {
      stoppedBecause = 'not-shrinking';
      break;
    }
    previous = changed;
  }
  const hashes = await run(rounds.length + 1, Consistency.PreCopy);
  return { rounds, stoppedBecause, hashes };
}
