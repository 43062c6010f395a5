import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CompactionEvents } from '@pagevault/compaction';
import { boundedCall } from '@pagevault/service-kit';

/** How long a scrape waits for the broker to say the consumer lag. */
const LAG_WAIT_MS = 2_000;

/**
 * The compactor's Prometheus metrics, fed by CompactionService events; consumer lag (from the broker)
 * and packs written (from the repository) are read when scraped.
 */
export function compactorMetrics(registry: Registry, lag?: () => Promise<bigint>, packsWritten?: () => Promise<number>): CompactionEvents {
  collectDefaultMetrics({ register: registry });
  const r = { registers: [registry] };
  const framesIn = new Counter({ name: 'pagevault_compactor_frames_in_total', help: 'frames consumed', ...r });
  const bytesIn = new Counter({ name: 'pagevault_compactor_bytes_in_total', help: 'frame bytes consumed', ...r });
  const pagesIn = new Counter({ name: 'pagevault_compactor_pages_in_total', help: 'data pages in committed snapshots', ...r });
  const unique = new Counter({ name: 'pagevault_compactor_unique_pages_stored_total', help: 'pages stored for the first time', ...r });
  const delta = new Counter({ name: 'pagevault_compactor_delta_pages_stored_total', help: 'pages stored as deltas against their parent snapshot\'s page', ...r });
  const stored = new Counter({ name: 'pagevault_compactor_bytes_stored_total', help: 'compressed pack bytes written', ...r });
  const dedup = new Gauge({ name: 'pagevault_compactor_dedup_ratio', help: 'data pages in / pages stored, since start', ...r });
  const committed = new Counter({ name: 'pagevault_compactor_snapshots_committed_total', help: 'snapshots made visible', ...r });
  const failed = new Counter({ name: 'pagevault_compactor_snapshots_failed_total', help: 'snapshots rejected', labelNames: ['code'], ...r });
  const latency = new Histogram({ name: 'pagevault_compactor_commit_latency_seconds', help: 'first frame to manifest written', buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300], ...r });
  // The broker is asked once at a time, and a scrape waits for it at most LAG_WAIT_MS: a broker that
  // does not answer must not hold /metrics past Prometheus's scrape timeout (10 s by default). The gauge
  // goes NaN until it answers again.
  const askLag = lag && boundedCall(() => lag().then(Number, () => NaN), LAG_WAIT_MS, NaN);
  new Gauge({
    name: 'pagevault_compactor_consumer_lag_records', help: 'frame records not yet committed by the group, over all partitions', ...r,
    async collect() {
      if (askLag) this.set(await askLag());
    },
  });
  let packsSeen = 0;
  new Counter({
    name: 'pagevault_compactor_packs_written_total', help: 'packs of pages written to the bucket (a pack holds the pages of several snapshots)', ...r,
    async collect() {
      const n = packsWritten ? await packsWritten().catch(() => packsSeen) : 0;
      if (n > packsSeen) this.inc(n - packsSeen);
      packsSeen = Math.max(packsSeen, n);
    },
  });
  let inPages = 0;
  let newPages = 0;
  return {
    frames(n, b) {
      framesIn.inc(n);
      bytesIn.inc(b);
    },
    committed(m, ms) {
      committed.inc();
      latency.observe(ms / 1000);
      pagesIn.inc(m.counts.dataPages);
      unique.inc(m.counts.newPages);
      delta.inc(m.counts.deltaPages ?? 0);
      stored.inc(m.counts.newBytes);
      inPages += m.counts.dataPages;
      newPages += m.counts.newPages;
      dedup.set(newPages ? inPages / newPages : 0);
    },
    failed(_id, code) {
      failed.inc({ code });
    },
  };
}
