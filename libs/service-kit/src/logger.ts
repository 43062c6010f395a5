import type { LoggerService } from '@nestjs/common';
import pino from 'pino';

/** Structured JSON logs (pino) for the services, also used as Nest's logger. */
export function createLogger(service: string): pino.Logger {
  return pino({ name: service, level: process.env['PV_LOG_LEVEL'] ?? 'info' });
}

export class PinoNestLogger implements LoggerService {
  constructor(private readonly pino: pino.Logger) {}
  log(message: unknown, context?: string): void {
    this.pino.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.pino.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.pino.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string): void {
    this.pino.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string): void {
    this.pino.trace({ context }, String(message));
  }
}
