import { describe, expect, it } from 'vitest';
import { SnapshotWriter, newSnapshotId } from '@pagevault/format';
import { PageHashTable } from '../dirty/page-hash-table';
import { checkOptions, type CaptureOptions } from './options';

const base = (): CaptureOptions => ({
  pid: 42,
  tenant: 't',
  host: 'h',
  writer: new SnapshotWriter({ snapshotId: newSnapshotId(), emit: () => undefined }),
});

describe('checkOptions', () => {
  it('accepts sane options', () => {
    expect(() => checkOptions(base())).not.toThrow();
  });

  it.each([
    ['a bad pid', { pid: 0 }, /pid/],
    ['a huge batch', { batchPages: 1 << 20 }, /batchPages/],
    ['a fractional pagemap window', { pagemapEntries: 1.5 }, /pagemapEntries/],
    ['an unknown consistency', { consistency: 9 }, /consistency/],
    [
      'hashes of another process',
      {
        parent: {
          id: newSnapshotId(),
          hashes: new PageHashTable(7, 4096, new Float64Array(0), Buffer.alloc(0)),
        },
      },
      /pid 7/,
    ],
  ])('rejects %s with PV_INVALID_ARGUMENT', (_, patch, msg) => {
    expect(() => checkOptions({ ...base(), ...patch } as CaptureOptions)).toThrow(
      expect.objectContaining({ code: 'PV_INVALID_ARGUMENT', message: expect.stringMatching(msg) }),
    );
  });
});
