import { timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';

const OPEN = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Whether a request may go on: health and metrics are open, everything else needs `Authorization: Bearer
 * <token>` (the scheme in any case, as RFC 7235 has it: `bearer` too).
 */
export function authorized(token: Buffer, path: string, authorization: string | undefined): boolean {
  if (OPEN.has(path.endsWith('/') ? path.slice(0, -1) : path)) return true; // express routes /readyz/ as /readyz
  const m = /^bearer +(.+)$/i.exec(authorization ?? '');
  const got = Buffer.from(m?.[1] ?? '');
  return got.length === token.length && timingSafeEqual(got, token);
}

/**
 * The same check as express middleware, ahead of the body parser: a client without the token never has
 * its body read, let alone parsed.
 */
export function bearerAuthMiddleware(token: string) {
  const t = Buffer.from(token);
  return (
    req: { path: string; headers: Record<string, string | string[] | undefined> },
    res: { setHeader(k: string, v: string): void; status(n: number): { json(b: unknown): void } },
    next: () => void,
  ): void => {
    const h = req.headers['authorization'];
    if (authorized(t, req.path, typeof h === 'string' ? h : undefined)) return next();
    // The connection goes with the answer (Node closes it once the 401 is sent): a body still coming is
    // not read through and thrown away to reach a next request on the same connection.
    res.setHeader('Connection', 'close');
    res.setHeader('WWW-Authenticate', 'Bearer'); // RFC 6750: what the 401 wants
    res.status(401).json({ code: 'PV_HTTP', message: 'a valid bearer token is required', retriable: false });
  };
}

/** Requires `Authorization: Bearer <token>` on every route but health and metrics. */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  private readonly token: Buffer;

  constructor(token: string) {
    this.token = Buffer.from(token);
  }

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<{ path: string; headers: Record<string, string | undefined> }>();
    if (!authorized(this.token, req.path, req.headers['authorization'])) throw new UnauthorizedException('a valid bearer token is required');
    return true;
  }
}
