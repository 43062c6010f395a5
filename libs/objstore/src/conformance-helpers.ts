import { randomBytes } from 'node:crypto';
import { isPvError, type ErrorCode } from '@pagevault/errors';
import { forEachLimited } from './for-each-limited.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';

export { forEachLimited };

/** A key namespace no other run shares, so suites can run side by side against one bucket. */
export function uniqueNamespace(): string {
  return `conformance-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}/`;
}

export async function collect(list: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of list) out.push(info);
  return out;
}

/** Deletes everything under `prefix`; what a suite leaves behind is its own fault. */
export async function deleteAll(store: ObjectStore, prefix: string): Promise<void> {
  const keys = (await collect(store.list(prefix))).map((i) => i.key);
  await forEachLimited(keys, 16, (key) => store.delete(key));
}

/** Awaits `promise`, expecting a PvError with `code` whose message contains every `mentions`. */
export async function expectPvError(promise: Promise<unknown>, code: ErrorCode, ...mentions: string[]) {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  if (!isPvError(error, code)) {
    throw new Error(`expected a PvError ${code}, got ${error === undefined ? 'success' : String(error)}`, {
      cause: error,
    });
  }
  for (const m of mentions) {
    if (!error.message.includes(m))
      throw new Error(`expected the ${code} message to name ${m}: ${error.message}`);
  }
  return error;
}

/** Bytes with a 64 KiB period, so a range read from a wrong offset does not match by accident. */
export function patterned(size: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 8) * 7 + seed) & 0xff;
  return b;
}
