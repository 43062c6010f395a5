import { describe, expect, it } from 'vitest';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { localFileError } from './local-file-error';

const sysError = (code: string) => Object.assign(new Error(`${code}: failed`), { code });

describe('localFileError', () => {
  it('types a full disk and a refused file (retrying helps neither), and anything else as the log being unavailable', () => {
    const full = localFileError(sysError('ENOSPC'), 'frame spool', '/var/tmp', 'write');
    expect(full).toMatchObject({ code: ErrorCodes.STORE_FULL, details: { dir: '/var/tmp', op: 'write', errno: 'ENOSPC' } });
    expect(full.message).toBe('frame spool: write of its file in /var/tmp failed: no space left (ENOSPC)');
    expect(localFileError(sysError('EROFS'), 'frame spool', '/var/tmp', 'write').code).toBe(ErrorCodes.PERMISSION_DENIED);
    expect(localFileError(sysError('EIO'), 'frame spool', '/var/tmp', 'read').code).toBe(ErrorCodes.LOG_UNAVAILABLE);
    const typed = new PvError(ErrorCodes.TIMEOUT, 'already typed');
    expect(localFileError(typed, 'frame spool', '/var/tmp', 'write')).toBe(typed);
  });
});
