import { randomBytes } from 'node:crypto';
import { SNAPSHOT_ID_BYTES } from './constants';

/** A new random 128-bit snapshot id. */
export function newSnapshotId(): Uint8Array {
  return randomBytes(SNAPSHOT_ID_BYTES);
}

export function idToHex(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

export function idFromHex(hex: string): Uint8Array {
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new RangeError(`not a snapshot id: ${JSON.stringify(hex)}`);
  return Buffer.from(hex, 'hex');
}

export function isZeroId(id: Uint8Array): boolean {
  return id.every((b) => b === 0);
}
