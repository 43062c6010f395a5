import { ErrorCodes, PvError } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { mapFsError } from './fs-errors.js';

const fsError = (code: string) => Object.assign(new Error(`${code}: something`), { code });

describe('filesystem errors', () => {
  it.each([
    ['ENOSPC', ErrorCodes.STORE_FULL, false],
    ['EDQUOT', ErrorCodes.STORE_FULL, false],
    ['EACCES', ErrorCodes.PERMISSION_DENIED, false],
    ['EROFS', ErrorCodes.PERMISSION_DENIED, false],
    ['ENOENT', ErrorCodes.OBJECT_NOT_FOUND, false],
    ['EMFILE', ErrorCodes.STORE_UNAVAILABLE, true],
    ['EIO', ErrorCodes.STORE_UNAVAILABLE, false],
  ] as const)('%s becomes %s (retriable: %s), naming key and store', (errno, code, retriable) => {
    const e = mapFsError(fsError(errno), 'put', 'packs/ab', 'dir:/srv/pv');
    expect(e).toBeInstanceOf(PvError);
    expect(e.code).toBe(code);
    expect(e.retriable).toBe(retriable);
    expect(e.message).toContain('packs/ab');
    expect(e.message).toContain('dir:/srv/pv');
    expect((e.cause as Error).message).toContain(errno);
  });

  it('passes PvErrors through unchanged', () => {
    const original = new PvError(ErrorCodes.OBJECT_CORRUPT, 'short');
    expect(mapFsError(original, 'get', 'k', 'dir:/x')).toBe(original);
  });
});
