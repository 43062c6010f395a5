import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CaptureStats } from '@pagevault/capture';
import { agentMetrics } from './agent-metrics';

const value = async (r: Registry, series: string) => {
  const line = (await r.metrics()).split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

/** Every series in `want` has its value (the series named in the failure). */
const expectSeries = async (r: Registry, want: Record<string, number>) => {
  for (const [series, v] of Object.entries(want)) expect(await value(r, series), series).toBe(v);
};

function stats(o: Partial<CaptureStats>): CaptureStats {
  return {
    pid: 1, vmas: 1, pagesScanned: 0, dataPages: 0, zeroPages: 0, filePages: 0, parentPages: 0, skippedUntouched: 0, skippedByReason: {},
    bytesRead: 0, nonExclusivePages: 0, readMs: 0, freezeMs: 0, totalMs: 0, readCalls: 0, frames: 0, changeDetection: 'none', ...o,
  };
}

describe('agentMetrics', () => {
  it('counts a snapshot: pages by fate, skipped by reason, bytes, read and freeze time', async () => {
    const registry = new Registry();
    const m = agentMetrics(registry);
    m.observe(stats({ pagesScanned: 100, dataPages: 60, zeroPages: 30, filePages: 10, skippedUntouched: 5, skippedByReason: { vdso: 2 }, bytesRead: 245760, readMs: 1500, freezeMs: 2000 }), 300000);
    await expectSeries(registry, {
      'pagevault_agent_pages_total{fate="scanned"}': 100,
      'pagevault_agent_pages_total{fate="sent"}': 60,
      'pagevault_agent_pages_skipped_total{reason="vdso"}': 2,
      'pagevault_agent_bytes_sent_total': 300000,
      'pagevault_agent_read_seconds_total': 1.5,
      'pagevault_agent_freeze_seconds_sum': 2,
      'pagevault_agent_snapshots_total{outcome="sent"}': 1,
    });
  });

  it('counts a pre-copy snapshot: every round read, one freeze (the last round), and its rounds', async () => {
    const registry = new Registry();
    const m = agentMetrics(registry);
    const live = stats({ pagesScanned: 100, dataPages: 100, bytesRead: 409600, readMs: 100 });
    const again = stats({ pagesScanned: 100, dataPages: 20, parentPages: 80, bytesRead: 409600, readMs: 100 });
    const frozen = stats({ pagesScanned: 100, dataPages: 3, parentPages: 97, bytesRead: 409600, readMs: 100, freezeMs: 250 });
    m.observePreCopy([live, again, frozen], 500000);
    await expectSeries(registry, {
      'pagevault_agent_pages_total{fate="scanned"}': 300,
      'pagevault_agent_pages_total{fate="sent"}': 123,
      'pagevault_agent_bytes_read_total': 3 * 409600,
      'pagevault_agent_freeze_seconds_count': 1,
      'pagevault_agent_freeze_seconds_sum': 0.25,
      'pagevault_agent_precopy_rounds_sum': 3,
      'pagevault_agent_precopy_rounds_bucket{le="2"}': 0,
      'pagevault_agent_precopy_rounds_bucket{le="3"}': 1,
      'pagevault_agent_snapshots_total{outcome="sent"}': 1,
    });
  });

  it('counts a group: every member read and sent, one freeze for all of them', async () => {
    const registry = new Registry();
    const m = agentMetrics(registry);
    const member = (dataPages: number) => stats({ pagesScanned: 100, dataPages, bytesRead: dataPages * 4096, readMs: 250, freezeMs: 400 });
    m.observeGroup([member(10), member(20), member(30)], 250000);
    await expectSeries(registry, {
      'pagevault_agent_pages_total{fate="scanned"}': 300,
      'pagevault_agent_pages_total{fate="sent"}': 60,
      'pagevault_agent_bytes_read_total': 60 * 4096,
      'pagevault_agent_bytes_sent_total': 250000,
      'pagevault_agent_read_seconds_total': 0.75,
      'pagevault_agent_freeze_seconds_count': 1,
      'pagevault_agent_freeze_seconds_sum': 0.4,
      'pagevault_agent_snapshots_total{outcome="sent"}': 3,
    });
  });

  it('counts failures by code', async () => {
    const registry = new Registry();
    agentMetrics(registry).failed('PV_TARGET_GONE');
    expect(await value(registry, 'pagevault_agent_snapshots_total{outcome="PV_TARGET_GONE"}')).toBe(1);
  });
});
