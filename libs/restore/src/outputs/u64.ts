// Node's writeBigUInt64LE costs microseconds per call (BigInt arithmetic); headers and iovec arrays write
// thousands of these, so 64-bit fields are written as two 32-bit halves. Values are below 2^53 (page-aligned
// addresses and sizes), which a JS number holds exactly.
const TWO32 = 0x1_0000_0000;

export function writeU64(b: Buffer, value: number, at: number): void {
  b.writeUInt32LE(value % TWO32, at);
  b.writeUInt32LE(Math.floor(value / TWO32), at + 4);
}

export function readU64(b: Buffer, at: number): number {
  return b.readUInt32LE(at) + b.readUInt32LE(at + 4) * TWO32;
}
