import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BearerAuthGuard } from './auth.guard';
import { PvErrorFilter } from './error.filter';
import { PinoNestLogger, createLogger } from './logger';

export interface ServeOptions {
  service: string;
  host: string;
  port: number;
  token: string;
}

/** Starts a Nest app with JSON logs, bearer auth, PvError mapping and graceful shutdown on SIGTERM/SIGINT. */
export async function serve(module: unknown, o: ServeOptions): Promise<INestApplication> {
  const log = createLogger(o.service);
  const app = await NestFactory.create(module as never, { logger: new PinoNestLogger(log) });
  app.useGlobalGuards(new BearerAuthGuard(o.token));
  app.useGlobalFilters(new PvErrorFilter());
  app.enableShutdownHooks();
  await app.listen(o.port, o.host);
  log.info({ host: o.host, port: o.port }, `${o.service} listening`);
  return app;
}
