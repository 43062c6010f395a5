import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CaptureStats } from '@pagevault/capture';

export interface AgentMetrics {
  /** One snapshot sent: its capture's stats and frame bytes. */
  observe(s: CaptureStats, frameBytes: number): void;
  /** One pre-copy snapshot sent: every round's reads count; the target froze once, for the last round. */
  observePreCopy(rounds: CaptureStats[], frameBytes: number): void;
  /** A group sent: a snapshot per member, all frozen together once (each member's freezeMs is that freeze). */
  observeGroup(members: CaptureStats[], frameBytes: number): void;
  failed(code: string): void;
}

/** The agent's Prometheus metrics: pages by fate, bytes, read and freeze time, rounds. */
export function agentMetrics(registry: Registry): AgentMetrics {
  collectDefaultMetrics({ register: registry });
  const r = { registers: [registry] };
  const pages = new Counter({ name: 'pagevault_agent_pages_total', help: 'pages by fate', labelNames: ['fate'], ...r });
  const skipped = new Counter({ name: 'pagevault_agent_pages_skipped_total', help: 'pages not read, by reason', labelNames: ['reason'], ...r });
  const bytes = new Counter({ name: 'pagevault_agent_bytes_sent_total', help: 'frame bytes sent to the log', ...r });
  const read = new Counter({ name: 'pagevault_agent_bytes_read_total', help: 'bytes read from targets', ...r });
  const readTime = new Counter({ name: 'pagevault_agent_read_seconds_total', help: 'time in read calls', ...r });
  const freeze = new Histogram({ name: 'pagevault_agent_freeze_seconds', help: 'how long targets stayed frozen', buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10], ...r });
  const snaps = new Counter({ name: 'pagevault_agent_snapshots_total', help: 'snapshots by outcome', labelNames: ['outcome'], ...r });
  const rounds = new Histogram({ name: 'pagevault_agent_precopy_rounds', help: 'capture rounds of a pre-copy snapshot, the frozen last one included', buckets: [1, 2, 3, 4, 6, 8, 12, 16], ...r });
  const reads = (s: CaptureStats) => {
    pages.inc({ fate: 'scanned' }, s.pagesScanned);
    pages.inc({ fate: 'sent' }, s.dataPages);
    pages.inc({ fate: 'zero' }, s.zeroPages);
    pages.inc({ fate: 'file' }, s.filePages);
    pages.inc({ fate: 'same-as-parent' }, s.parentPages);
    skipped.inc({ reason: 'untouched' }, s.skippedUntouched);
    for (const [reason, n] of Object.entries(s.skippedByReason)) skipped.inc({ reason }, n);
    read.inc(s.bytesRead);
    readTime.inc(s.readMs / 1000);
  };
  return {
    observe(s, frameBytes) {
      reads(s);
      bytes.inc(frameBytes);
      freeze.observe(s.freezeMs / 1000);
      snaps.inc({ outcome: 'sent' });
    },
    observePreCopy(all, frameBytes) {
      for (const s of all) reads(s);
      bytes.inc(frameBytes);
      freeze.observe((all.at(-1)?.freezeMs ?? 0) / 1000);
      rounds.observe(all.length);
      snaps.inc({ outcome: 'sent' });
    },
    observeGroup(members, frameBytes) {
      for (const s of members) reads(s);
      bytes.inc(frameBytes);
      freeze.observe((members[0]?.freezeMs ?? 0) / 1000);
      snaps.inc({ outcome: 'sent' }, members.length);
    },
    failed(code) {
      snaps.inc({ outcome: code });
    },
  };
}
