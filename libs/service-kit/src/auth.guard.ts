import { timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';

const OPEN = new Set(['/healthz', '/readyz', '/metrics']);

/** Requires `Authorization: Bearer <token>` on every route but health and metrics. */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  private readonly token: Buffer;

  constructor(token: string) {
    this.token = Buffer.from(token);
  }

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<{ path: string; headers: Record<string, string | undefined> }>();
    if (OPEN.has(req.path)) return true;
    const m = /^Bearer (.+)$/.exec(req.headers['authorization'] ?? '');
    const got = Buffer.from(m?.[1] ?? '');
    if (got.length !== this.token.length || !timingSafeEqual(got, this.token)) {
      throw new UnauthorizedException('a valid bearer token is required');
    }
    return true;
  }
}
