import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { compactorMetrics } from './compactor-metrics';

const value = async (r: Registry, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await r.metrics())?.[1]);

describe('compactorMetrics', () => {
  it('counts the packs the repository has written, read when scraped, and never counts down', async () => {
    const registry = new Registry();
    let packs = 0;
    compactorMetrics(registry, undefined, async () => packs);
    expect(await value(registry, 'pagevault_compactor_packs_written_total')).toBe(0);
    packs = 3;
    expect(await value(registry, 'pagevault_compactor_packs_written_total')).toBe(3);
    packs = 5;
    expect(await value(registry, 'pagevault_compactor_packs_written_total')).toBe(5);
    packs = 2; // a repository that forgot its tenants: the counter stays where it was
    expect(await value(registry, 'pagevault_compactor_packs_written_total')).toBe(5);
  });

  it('keeps /metrics answering when the repository cannot say, and reports the lag as NaN without a broker', async () => {
    const registry = new Registry();
    compactorMetrics(registry, () => Promise.reject(new Error('broker down')), () => Promise.reject(new Error('no store')));
    expect(await value(registry, 'pagevault_compactor_packs_written_total')).toBe(0);
    expect(await value(registry, 'pagevault_compactor_consumer_lag_records')).toBeNaN();
  });

  it('answers a scrape within seconds while the broker does not answer, asking it once at a time', async () => {
    const registry = new Registry();
    let asked = 0;
    compactorMetrics(registry, () => {
      asked++;
      return new Promise<bigint>(() => undefined); // never answers
    });
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      expect(await value(registry, 'pagevault_compactor_consumer_lag_records')).toBeNaN();
      expect(performance.now() - t0).toBeLessThan(5_000);
    }
    expect(asked).toBe(1);
  });

  it('derives the dedup ratio from committed snapshots', async () => {
    const registry = new Registry();
    const events = compactorMetrics(registry);
    const manifest = (dataPages: number, newPages: number) => ({ counts: { dataPages, newPages, newBytes: newPages * 1000 } }) as never;
    events.committed?.(manifest(100, 50), 10);
    events.committed?.(manifest(100, 0), 10);
    expect(await value(registry, 'pagevault_compactor_dedup_ratio')).toBe(4);
    expect(await value(registry, 'pagevault_compactor_unique_pages_stored_total')).toBe(50);
  });
});
