import { STATUS_CODES, maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { exactJson } from '@pagevault/errors';
import { BearerAuthGuard, bearerAuthMiddleware } from './auth.guard';
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
  // The body parser comes after the token check (Nest's own would run before any guard), and takes
  // JSON only: request bodies here are a few fields.
  const app = await NestFactory.create<NestExpressApplication>(module as never, { logger: new PinoNestLogger(log), bodyParser: false });
  app.use(bearerAuthMiddleware(o.token));
  app.use(exactJsonReplies);
  app.useBodyParser('json', { limit: '64kb' });
  app.useGlobalGuards(new BearerAuthGuard(o.token));
  app.useGlobalFilters(new PvErrorFilter());
  app.enableShutdownHooks();
  app.getHttpServer().on('clientError', parserRefusal);
  await app.listen(o.port, o.host);
  log.info({ host: o.host, port: o.port }, `${o.service} listening`);
  return app;
}

/**
 * JSON replies with exact 64-bit integers (exactJson: the vsyscall page's address, above 2⁵³), for
 * every reply Nest and the filters send with res.json.
 */
function exactJsonReplies(_req: unknown, res: { json(b: unknown): unknown; send(b: string): unknown; get(h: string): string | undefined; type(t: string): unknown }, next: () => void): void {
  res.json = (body: unknown) => {
    if (!res.get('Content-Type')) res.type('application/json');
    return res.send(exactJson(body));
  };
  next();
}

/**
 * What Node's HTTP parser refuses before any route sees it (headers over `maxHeaderSize`, a malformed
 * request line, a request that took too long) gets the JSON body every other error has; Node's own
 * answer is the bare status line.
 */
function parserRefusal(err: Error & { code?: string }, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, message] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, `request headers larger than ${maxHeaderSize} bytes`]
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request not received in time']
    : [400, `malformed HTTP request (${err.code ?? err.message})`];
  const body = JSON.stringify({ code: 'PV_HTTP', message, retriable: status === 408 });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
