import { ErrorCodes, PvError } from '@pagevault/errors';
import { FrameType, HEADER_BYTES, MAX_PAGE_SIZE, MIN_PAGE_SIZE, Prot, SNAPSHOT_ID_BYTES, VmaFlag } from '../constants';
import { ByteReader } from '../bytes';
import { isZeroId } from '../ids';
import type { FrameBody, FrameHeader, PageRun } from '../types';

const PROT_BITS = Prot.Read | Prot.Write | Prot.Exec;
const VMA_FLAG_BITS = VmaFlag.Shared | VmaFlag.NoContents | VmaFlag.SharedElsewhere;

/** Decodes the payload of a version-1 frame whose header and CRC were already checked. */
export function decodeBody(frame: Buffer, h: FrameHeader): FrameBody {
  const r = new ByteReader(frame, HEADER_BYTES, HEADER_BYTES + h.length, `frame ${h.sequence} (type ${h.type})`);
  const body = decodeByType(r, h.type);
  r.done();
  return body;
}

function decodeByType(r: ByteReader, type: FrameType): FrameBody {
  switch (type) {
    case FrameType.SnapshotBegin: {
      const pageSize = r.u32('pageSize');
      checkPageSize(pageSize);
      const pid = r.u32('pid');
      const startTimeMs = r.u64('startTimeMs');
      const parent = Buffer.from(r.bytes(SNAPSHOT_ID_BYTES, 'parentId'));
      const group = Buffer.from(r.bytes(SNAPSHOT_ID_BYTES, 'groupId'));
      const mode = r.u8('mode');
      const consistency = r.u8('consistency');
      if (mode > 1) malformed(`unknown snapshot mode ${mode}`);
      if (consistency > 2) malformed(`unknown consistency ${consistency}`);
      reserved(r.u16('reserved'));
      const tenant = r.str('tenant');
      const host = r.str('host');
      const cmdline = r.str('cmdline');
      return {
        type,
        begin: {
          pageSize, pid, startTimeMs, mode, consistency, tenant, host, cmdline,
          ...(isZeroId(parent) ? {} : { parentId: parent }),
          ...(isZeroId(group) ? {} : { groupId: group }),
        },
      };
    }
    case FrameType.VmaBegin: {
      const index = r.u32('index');
      const start = r.u64('start');
      const end = r.u64('end');
      const prot = r.u32('prot');
      const flags = r.u32('flags');
      // Bits this version does not define have no meaning a reader could honour: a new bit needs a new version.
      if (prot & ~PROT_BITS) malformed(`unknown protection bits 0x${prot.toString(16)}`);
      if (flags & ~VMA_FLAG_BITS) malformed(`unknown VMA flag bits 0x${flags.toString(16)}`);
      const pgoff = r.u64('pgoff');
      const kind = r.u8('kind');
      if (kind < 1 || kind > 10) malformed(`unknown VMA kind ${kind}`);
      reserved(r.u8('reserved'));
      reserved(r.u16('reserved'));
      const inode = r.u64('inode');
      const dev = r.str('dev');
      const path = r.str('path');
      const vmFlags = r.str('vmFlags');
      const reason = r.str('reason');
      const sharedKey = r.str('sharedKey');
      return { type, vma: { index, start, end, prot, flags, pgoff, kind, dev, inode, path, vmFlags, reason, sharedKey } };
    }
    case FrameType.PageChunk: {
      const n = r.u32('count');
      const pageSize = r.u32('pageSize');
      checkPageSize(pageSize);
      // Checked against the frame's real length before anything sized by n is allocated.
      r.need(n * (8 + pageSize), `${n} pages`);
      const addresses = new Float64Array(n);
      for (let i = 0; i < n; i++) addresses[i] = r.u64('address');
      const data = r.bytes(n * pageSize, 'page data');
      return { type, pageSize, addresses, data };
    }
    case FrameType.ZeroRuns:
    case FrameType.FileRuns:
    case FrameType.ParentRuns: {
      const n = r.u32('count');
      r.need(n * 16, `${n} runs`);
      const runs: PageRun[] = new Array(n);
      for (let i = 0; i < n; i++) runs[i] = { start: r.u64('run start'), pages: r.u64('run pages') };
      return { type, runs };
    }
    case FrameType.VmaEnd: {
      const index = r.u32('index');
      if (r.u32('zero') !== 0) malformed('VMA end: page count must be 0');
      return { type, index };
    }
    case FrameType.SnapshotEnd: {
      const vmaCount = r.u32('vmaCount');
      reserved(r.u32('reserved'));
      const end = {
        vmaCount,
        dataPages: r.u64('dataPages'),
        zeroPages: r.u64('zeroPages'),
        filePages: r.u64('filePages'),
        parentPages: r.u64('parentPages'),
        frameCount: r.u64('frameCount'),
        digest: Buffer.from(r.bytes(32, 'digest')),
      };
      return { type, end };
    }
    case FrameType.Abort:
      return { type, code: r.str('code'), message: r.str('message') };
  }
}

function checkPageSize(pageSize: number): void {
  if (pageSize < MIN_PAGE_SIZE || pageSize > MAX_PAGE_SIZE || (pageSize & (pageSize - 1)) !== 0) {
    malformed(`page size ${pageSize} is not a power of two in [${MIN_PAGE_SIZE}, ${MAX_PAGE_SIZE}]`);
  }
}

/** Reserved fields must be 0, so that one value has one encoding and a later version may use them. */
function reserved(v: number): void {
  if (v !== 0) malformed(`reserved field is ${v}, must be 0`);
}

function malformed(message: string): never {
  throw new PvError(ErrorCodes.FRAME_MALFORMED, message);
}
