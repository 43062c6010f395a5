import 'reflect-metadata';
export { loadConfig, commonSpec, type Config, type ConfigSpec } from './config';
export { BearerAuthGuard } from './auth.guard';
export { PvErrorFilter } from './error.filter';
export { createLogger, PinoNestLogger } from './logger';
export { HealthController, READINESS, readinessOf, type Readiness } from './health.controller';
export { serve, type ServeOptions } from './bootstrap';
export { boundedCall } from './bounded-call';
export { requestBody, shown } from './request-body';
