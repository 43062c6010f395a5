import type { PageHashTable } from '@pagevault/capture';

/**
 * The page-hash tables of recent snapshots, by snapshot id, kept for the next incremental of their pid:
 * the newest ones up to `maxBytes` (a table is 24 bytes a data page with XXH3, 6 MiB per GiB of data),
 * so a group of hundreds of processes can all be parents and a few huge processes cannot take the
 * agent's memory. The newest table is kept whatever its size.
 */
export class HashTables {
  private readonly tables = new Map<string, PageHashTable>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(id: string): PageHashTable | undefined {
    return this.tables.get(id);
  }

  has(id: string): boolean {
    return this.tables.has(id);
  }

  keep(id: string, t: PageHashTable): void {
    const before = this.tables.get(id);
    if (before) this.bytes -= before.byteLength;
    this.tables.delete(id);
    this.tables.set(id, t);
    this.bytes += t.byteLength;
    for (const [old, o] of this.tables) {
      if (this.bytes <= this.maxBytes || old === id) break;
      this.tables.delete(old);
      this.bytes -= o.byteLength;
    }
  }

  /** Bytes held by the tables kept. */
  get byteLength(): number {
    return this.bytes;
  }
}
