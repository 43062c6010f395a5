import { Controller, Get, Header, HttpException, Inject } from '@nestjs/common';
import { Registry } from 'prom-client';

export const READINESS = Symbol('readiness');
/** Returns undefined when ready, or why not. */
export type Readiness = () => Promise<string | undefined>;

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
  async readyz(): Promise<{ status: string }> {
    const why = await this.ready();
    if (why) throw new HttpException({ status: 'not ready', reason: why }, 503);
    return { status: 'ready' };
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
