import { ErrorCodes, isPvError } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { validateObjectKey, validateObjectPrefix } from './object-key.js';

function rejects(validate: (k: string) => string, key: string): boolean {
  try {
    validate(key);
    return false;
  } catch (e) {
    return isPvError(e, ErrorCodes.INVALID_ARGUMENT) && e.message.includes(JSON.stringify(key));
  }
}

describe('object keys', () => {
  it.each(['a', 'packs/ab/abcdef.pack', 'snapshots/2024-01-01T00.00.00Z', '..x/y', 'a/.hidden', 'A-Z_0.9'])(
    'accepts %j',
    (key) => expect(validateObjectKey(key)).toBe(key),
  );

  it.each([
    '',
    '/abs',
    'a//b',
    'a/',
    '..',
    'a/../b',
    './a',
    'a/.',
    'sp ace',
    'ü',
    'a\\b',
    'a~b',
    'q?x',
    'x'.repeat(1025),
  ])('rejects %j with PV_INVALID_ARGUMENT naming it', (key) =>
    expect(rejects(validateObjectKey, key)).toBe(true),
  );
});

describe('list prefixes', () => {
  it.each(['', 'packs/', 'packs/ab', 'a/b/', '.', '..', 'a/..'])('accepts %j', (prefix) =>
    expect(validateObjectPrefix(prefix)).toBe(prefix),
  );

  it.each(['/', '/packs', 'a//b', '../x', 'a/./b', 'sp ace', 'a~'])('rejects %j', (prefix) =>
    expect(rejects(validateObjectPrefix, prefix)).toBe(true),
  );
});
