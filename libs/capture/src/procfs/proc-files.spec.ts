import { describe, expect, it } from 'vitest';
import { parseCmdline, parseStatState, parseStatus, procError } from './proc-files';

describe('/proc text parsers', () => {
  it('finds the state after the last parenthesis, whatever the command name holds', () => {
    expect(parseStatState('1234 (bash) S 1 1234 1234 0 -1')).toBe('S');
    expect(parseStatState('99 (evil) T (x) R 1 2 3')).toBe('R');
    expect(() => parseStatState('garbage')).toThrow(SyntaxError);
  });

  it('parses status fields', () => {
    const s = parseStatus('Name:\tcat\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\n');
    expect(s['Name']).toBe('cat');
    expect(s['State']).toBe('S (sleeping)');
  });

  it('drops the trailing NUL of cmdline', () => {
    expect(parseCmdline('/bin/cat\0-n\0')).toBe('/bin/cat\0-n');
    expect(parseCmdline('')).toBe('');
  });

  it('cuts a cmdline longer than a stream string (65535 bytes) at a character, never in one', () => {
    const java = `java\0-cp\0${'/opt/lib/x.jar:'.repeat(5000)}\0Main\0`; // 75,000 bytes
    const cut = parseCmdline(java);
    expect(Buffer.byteLength(cut)).toBe(65535);
    expect(java.startsWith(cut)).toBe(true);
    // 'é' is two bytes: 65535 falls inside the last one that would fit, which is left out whole.
    const accents = parseCmdline('é'.repeat(40000));
    expect([Buffer.byteLength(accents), accents]).toEqual([65534, 'é'.repeat(32767)]);
  });

  it('maps errno to the capture error codes', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(procError(err('ENOENT'), 7, 'maps', false).code).toBe('PV_NO_SUCH_PROCESS');
    expect(procError(err('ENOENT'), 7, 'maps', true).code).toBe('PV_PROCESS_EXITED');
    expect(procError(err('ESRCH'), 7, 'maps', true).message).toContain('7');
    const denied = procError(err('EACCES'), 7, 'maps', true);
    expect(denied.code).toBe('PV_PERMISSION_DENIED');
    expect(denied.message).toContain('CAP_SYS_PTRACE');
    expect(procError(err('EIO'), 7, 'maps', true).code).toBe('PV_READ_FAILED');
  });
});
