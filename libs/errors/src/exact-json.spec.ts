import { describe, expect, it } from 'vitest';
import { exactJson } from './exact-json';

describe('exactJson', () => {
  it('writes integers at and above 2^53 with their exact digits, and reads back the same', () => {
    const v = { start: 0xffffffffff600000, end: 0xffffffffff601000, low: 4096, neg: -(2 ** 60), list: [2 ** 53, 1.5] };
    const text = exactJson(v);
    expect(text).toBe('{"start":18446744073699065856,"end":18446744073699069952,"low":4096,"neg":-1152921504606846976,"list":[9007199254740992,1.5]}');
    expect(JSON.parse(text)).toEqual(v);
    expect(JSON.stringify(v)).toContain('18446744073699066000'); // what it replaces
  });

  it('is JSON.stringify for everything else, indentation included, and never touches a string', () => {
    const v = { a: 'x', b: [1, null, true], c: { d: 2 }, e: '\u0000 deadbeef:123', n: NaN };
    expect(exactJson(v, 2)).toBe(JSON.stringify(v, null, 2));
    const tricky = { s: '\u0000u64:18446744073699065856', n: 2 ** 64 };
    expect(JSON.parse(exactJson(tricky))).toEqual(tricky);
  });
});
