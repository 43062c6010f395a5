import { randomBytes } from 'node:crypto';

/**
 * JSON.stringify, except that an integer at or above 2⁵³ in magnitude is written with its exact digits.
 * JSON.stringify writes the shortest decimal that reads back as the same double: the vsyscall page,
 * 0xffffffffff600000 = 18446744073699065856, comes out as 18446744073699066000, which a reader with
 * 64-bit integers (Go, Java, jq 1.7) takes at its word — 144 bytes off, and not page-aligned. JSON.parse
 * reads both texts as the same number, so nothing changes for JavaScript readers.
 */
export function exactJson(value: unknown, indent?: number): string {
  // Such numbers go through as marked strings, then lose their quotes. The marker is random per call,
  // so no string of the value can pass for one.
  const mark = `\u0000${randomBytes(8).toString('hex')}:`;
  let marked = false;
  const text = JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) < 2 ** 53) return v;
      marked = true;
      return `${mark}${BigInt(v)}`;
    },
    indent,
  );
  if (!marked) return text;
  const escaped = JSON.stringify(mark).slice(1, -1);
  return text.replace(new RegExp(`"${escaped.replace(/\\/g, '\\\\')}(-?\\d+)"`, 'g'), '$1');
}
