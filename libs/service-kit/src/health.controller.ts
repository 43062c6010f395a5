import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { Registry } from 'prom-client';
import { boundedCall } from './bounded-call';

export const READINESS = Symbol('readiness');
/** Returns undefined when ready, or why not. */
export type Readiness = () => Promise<string | undefined>;

/**
 * Readiness from named probes of the service's dependencies (its object store, its Kafka cluster), run
 * together, each given `timeoutMs`: a dependency that hangs (a stopped server) makes the service not
 * ready in that time, not in its client's retry budget. Not ready names every dependency that failed.
 */
export function readinessOf(probes: Record<string, () => Promise<unknown>>, timeoutMs = 3_000): Readiness {
  const checks = Object.entries(probes).map(([name, probe]) =>
    boundedCall(() => probe().then(() => undefined, (e: unknown) => `${name}: ${e instanceof Error ? e.message : String(e)}`), timeoutMs, `${name}: no answer within ${timeoutMs} ms`),
  );
  return async () => {
    const why = (await Promise.all(checks.map((check) => check()))).filter((x) => x !== undefined);
    return why.length ? why.join('; ') : undefined;
  };
}

/** /healthz (the process runs), /readyz (its dependencies answer) and /metrics (Prometheus text). */
@Controller()
export class HealthController {
  constructor(
    @Inject(Registry) private readonly registry: Registry,
    @Inject(READINESS) private readonly ready: Readiness,
  ) {}

  @Get('healthz')
  healthz(): { status: string } {
    return { status: 'ok' };
  }

  @Get('readyz')
  async readyz(@Res({ passthrough: true }) res: { status(n: number): unknown }): Promise<Record<string, unknown>> {
    const why = await this.ready();
    if (!why) return { status: 'ready' };
    // The body of every other error (code, message, retriable), and the reason on its own for probes.
    res.status(503);
    return { status: 'not ready', reason: why, code: 'PV_NOT_READY', message: `not ready: ${why}`, retriable: true };
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
