import type { SnapshotWriter } from '@pagevault/format';
import type { HashCursor, PageHashTableBuilder } from '../dirty/page-hash-table';
import type { SoftDirtyMap } from '../dirty/soft-dirty-map';
import type { RemoteReader } from '../memory/remote-reader';
import type { PagemapReader } from '../pagemap/pagemap-reader';
import type { CaptureStats } from './options';

/**
 * Everything one capture shares between its VMAs. What bounds memory: the reader's buffer (batchPages
 * pages), the pagemap window (pagemapEntries * 8 bytes), the writer's one chunk, and — only when hashes
 * are kept for the next incremental — 24 bytes per data page in the hash table builders (40 with SHA-256).
 */
export interface Session {
  pid: number;
  pageSize: number;
  writer: SnapshotWriter;
  drain: (() => Promise<void>) | undefined;
  signal: AbortSignal | undefined;
  stats: CaptureStats;
  reader: RemoteReader;
  pagemap: PagemapReader;
  /**
   * none: every read page is sent. hash: every touched page is read and hashed, and one whose hash equals
   * the parent's becomes a same-as-parent run. soft-dirty: clean pages the parent holds become
   * same-as-parent runs unread; dirty ones are read and sent.
   */
  mode: 'none' | 'hash' | 'soft-dirty';
  parent: HashCursor | undefined;
  softDirty: SoftDirtyMap | undefined;
  /** Hashes of pages read (set when hashes are wanted or compared), of the parent table's kind if any. */
  readHashes: PageHashTableBuilder | undefined;
  /** Hashes carried over unread from the parent (soft-dirty mode). */
  carriedHashes: PageHashTableBuilder | undefined;
}
