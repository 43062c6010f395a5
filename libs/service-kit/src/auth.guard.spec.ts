import { describe, expect, it } from 'vitest';
import { authorized } from './auth.guard';

describe('authorized', () => {
  const token = Buffer.from('s3cret-token');

  it('takes the bearer scheme in any case, the token exactly', () => {
    for (const h of ['Bearer s3cret-token', 'bearer s3cret-token', 'BEARER  s3cret-token']) expect(authorized(token, '/snapshots', h), h).toBe(true);
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic s3cret-token', 'Bearer s3cret-tokeN', 'Bearer s3cret-token x', 'Bearers3cret-token']) {
      expect(authorized(token, '/snapshots', h), String(h)).toBe(false);
    }
  });

  it('lets health and metrics through without a token', () => {
    for (const p of ['/healthz', '/readyz', '/metrics']) expect(authorized(token, p, undefined)).toBe(true);
    // With the trailing slash express routes to the same handler.
    for (const p of ['/healthz/', '/readyz/', '/metrics/']) expect(authorized(token, p, undefined)).toBe(true);
    for (const p of ['/snapshots/', '/readyz/x', '//readyz']) expect(authorized(token, p, undefined), p).toBe(false);
  });
});
