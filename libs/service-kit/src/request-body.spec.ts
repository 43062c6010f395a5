import { ErrorCodes, isPvError } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { requestBody } from './request-body';

function failure(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a failure');
}

describe('requestBody', () => {
  const known = ['pid', 'parent'] as const;

  it('passes an object of known fields through as it is', () => {
    const body = { pid: 7, parent: 'latest' };
    expect(requestBody<{ pid: number; parent: string }>(body, [...known])).toBe(body);
    expect(requestBody<{ pid?: number }>({}, ['pid'])).toEqual({});
  });

  it('names a misspelt field and the known ones', () => {
    const e = failure(() => requestBody({ pid: 7, parnet: 'latest' }, [...known]));
    expect(isPvError(e, ErrorCodes.INVALID_ARGUMENT)).toBe(true);
    expect((e as Error).message).toBe('unknown field parnet (known: pid, parent)');
  });

  it('refuses a body that is not an object', () => {
    for (const body of [null, [], 7, 'pid', undefined]) {
      const e = failure(() => requestBody(body, [...known]));
      expect(isPvError(e, ErrorCodes.INVALID_ARGUMENT)).toBe(true);
      expect((e as Error).message).toBe('the request body must be a JSON object');
    }
  });
});
