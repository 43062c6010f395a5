import { crc32c } from '@pagevault/hashing';
import { createRequire } from 'node:module';

/**
 * kafkajs computes the CRC32C of every record batch it produces in JavaScript, a table lookup per byte
 * (about one core-second per 0.45 GB). Its producer takes the function from one internal module,
 * `src/protocol/recordBatch/crc32C/index.js`, whose export is `(buffer: Buffer) => number` returning
 * the CRC as an UNSIGNED 32-bit integer (it ends in `Uint32Array.from([crc])[0]`). We replace that
 * module's export in Node's CommonJS cache with @pagevault/hashing's crc32c (SSE4.2 CRC instructions on
 * three streams at once; @node-rs/crc32 where that library is not built), which takes a Buffer and
 * returns the same unsigned value.
 *
 * The record batch encoder (`recordBatch/v0/index.js`) binds the function when it is first required,
 * lazily at the first produce request; so the patch must run before that, i.e. when this adapter is
 * loaded. If the encoder was loaded earlier (kafkajs used elsewhere first), the patch is "too-late"
 * and kafkajs keeps its JS CRC: still correct, only slower.
 */
export type Crc32cPatchState = 'patched' | 'too-late';

const CRC_MODULE = 'kafkajs/src/protocol/recordBatch/crc32C/index.js';
const ENCODER_MODULE = 'kafkajs/src/protocol/recordBatch/v0/index.js';

/** The replacement: same signature and result as kafkajs's crc32C/index.js export. */
export function nativeCrc32c(buffer: Buffer): number {
  return crc32c(buffer);
}

let state: Crc32cPatchState | undefined;

/** Idempotent; returns what happened the first time. */
export function patchKafkajsCrc32c(): Crc32cPatchState {
  if (state) return state;
  // Anchored at this file, so it is the kafkajs this adapter imports.
  const req = createRequire(__filename);
  if (req.cache[req.resolve(ENCODER_MODULE)]) return (state = 'too-late');
  const id = req.resolve(CRC_MODULE);
  req(id);
  const entry = req.cache[id];
  if (!entry) return (state = 'too-late');
  entry.exports = nativeCrc32c;
  return (state = 'patched');
}
