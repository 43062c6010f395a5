import { ErrorCodes, PvError } from '@pagevault/errors';
import { FrameType, HEADER_BYTES, SNAPSHOT_ID_BYTES } from '../constants';
import { ByteWriter, utf8 } from '../bytes';
import type { PageRun, SnapshotBegin, SnapshotEnd, VmaHeader } from '../types';
import { sealFrame } from './header';
import type { FramePool } from '../frame-pool';

/** Payload encoders of format version 1. Each returns a complete, sealed frame. */

const NO_ID = new Uint8Array(SNAPSHOT_ID_BYTES);

function frameWith(payloadBytes: number, fill: (w: ByteWriter) => void): { frame: Buffer; w: ByteWriter } {
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payloadBytes);
  const w = new ByteWriter(frame);
  w.pos = HEADER_BYTES;
  fill(w);
  if (w.pos !== frame.length) throw new Error(`encoder wrote ${w.pos} of ${frame.length} bytes`);
  return { frame, w };
}

export function encodeSnapshotBegin(id: Uint8Array, seq: number, b: SnapshotBegin): Buffer {
  const tenant = utf8(b.tenant, 'tenant');
  const host = utf8(b.host, 'host');
  const cmdline = utf8(b.cmdline, 'cmdline');
  const size = 4 + 4 + 8 + 16 + 16 + 4 + 6 + tenant.length + host.length + cmdline.length;
  const { frame } = frameWith(size, (w) => {
    w.u32(b.pageSize);
    w.u32(b.pid);
    w.u64(b.startTimeMs);
    w.bytes(b.parentId ?? NO_ID);
    w.bytes(b.groupId ?? NO_ID);
    w.u8(b.mode);
    w.u8(b.consistency);
    w.u16(0);
    w.str(tenant);
    w.str(host);
    w.str(cmdline);
  });
  return sealFrame(frame, FrameType.SnapshotBegin, seq, id);
}

export function encodeVmaBegin(id: Uint8Array, seq: number, v: VmaHeader): Buffer {
  const strs = [v.dev, v.path, v.vmFlags, v.reason, v.sharedKey].map((s, i) => utf8(s, `vma string ${i}`));
  const size = 4 + 8 + 8 + 4 + 4 + 8 + 4 + 8 + strs.reduce((n, s) => n + 2 + s.length, 0);
  const { frame } = frameWith(size, (w) => {
    w.u32(v.index);
    w.u64(v.start);
    w.u64(v.end);
    w.u32(v.prot);
    w.u32(v.flags);
    w.u64(v.pgoff);
    w.u8(v.kind);
    w.u8(0);
    w.u16(0);
    w.u64(v.inode);
    for (const s of strs) w.str(s);
  });
  return sealFrame(frame, FrameType.VmaBegin, seq, id);
}

/** Size of a page-chunk frame holding n pages. */
export function pageChunkBytes(n: number, pageSize: number): number {
  return HEADER_BYTES + 8 + n * (8 + pageSize);
}

/**
 * Lays out a page-chunk frame for n pages and returns it with the offset where page data starts, so a
 * caller can copy (or read) page contents straight into place and then seal it with sealPageChunk.
 */
export function allocPageChunk(n: number, pageSize: number, from?: FramePool | ((bytes: number) => Buffer)): { frame: Buffer; dataOffset: number } {
  const bytes = pageChunkBytes(n, pageSize);
  const frame = from === undefined ? Buffer.allocUnsafe(bytes) : typeof from === 'function' ? from(bytes) : from.take(bytes);
  frame.writeUInt32LE(n, HEADER_BYTES);
  frame.writeUInt32LE(pageSize, HEADER_BYTES + 4);
  return { frame, dataOffset: HEADER_BYTES + 8 + n * 8 };
}

/** Address i of a page-chunk frame (u64 little-endian), with no writer object: it runs once a page. */
export function writeChunkAddress(frame: Buffer, i: number, addr: number): void {
  const pos = HEADER_BYTES + 8 + i * 8;
  const hi = Math.floor(addr / 2 ** 32);
  frame.writeUInt32LE(addr - hi * 2 ** 32, pos);
  frame.writeUInt32LE(hi, pos + 4);
}

export function encodePageChunk(id: Uint8Array, seq: number, pageSize: number, addrs: ArrayLike<number>, data: Uint8Array): Buffer {
  if (data.length !== addrs.length * pageSize) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `page chunk: ${addrs.length} addresses but ${data.length} bytes`);
  }
  const { frame, dataOffset } = allocPageChunk(addrs.length, pageSize);
  for (let i = 0; i < addrs.length; i++) writeChunkAddress(frame, i, addrs[i]!);
  frame.set(data, dataOffset);
  return sealFrame(frame, FrameType.PageChunk, seq, id);
}

export function encodeRuns(id: Uint8Array, seq: number, type: FrameType.ZeroRuns | FrameType.FileRuns | FrameType.ParentRuns, runs: readonly PageRun[]): Buffer {
  const { frame } = frameWith(4 + runs.length * 16, (w) => {
    w.u32(runs.length);
    for (const r of runs) {
      w.u64(r.start);
      w.u64(r.pages);
    }
  });
  return sealFrame(frame, type, seq, id);
}

export function encodeVmaEnd(id: Uint8Array, seq: number, index: number): Buffer {
  const { frame } = frameWith(8, (w) => {
    w.u32(index);
    w.u32(0); // the zero-page chunk header that ends a VMA in the linux-cr dump
  });
  return sealFrame(frame, FrameType.VmaEnd, seq, id);
}

export function encodeSnapshotEnd(id: Uint8Array, seq: number, e: SnapshotEnd): Buffer {
  const { frame } = frameWith(4 + 4 + 8 * 5 + 32, (w) => {
    w.u32(e.vmaCount);
    w.u32(0);
    w.u64(e.dataPages);
    w.u64(e.zeroPages);
    w.u64(e.filePages);
    w.u64(e.parentPages);
    w.u64(e.frameCount);
    w.bytes(e.digest);
  });
  return sealFrame(frame, FrameType.SnapshotEnd, seq, id);
}

export function encodeAbort(id: Uint8Array, seq: number, code: string, message: string): Buffer {
  const c = utf8(code, 'abort code');
  const m = utf8(message.slice(0, 4000), 'abort message');
  const { frame } = frameWith(4 + c.length + m.length, (w) => {
    w.str(c);
    w.str(m);
  });
  return sealFrame(frame, FrameType.Abort, seq, id);
}
