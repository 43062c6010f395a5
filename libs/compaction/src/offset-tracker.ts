/**
 * Which offset a partition may commit: never past the first frame of a snapshot still open there, else
 * just after the last record handled. Offsets are int64 decimal strings; BigInt compares them exactly.
 */
export class OffsetTracker {
  private last = new Map<number, bigint>();

  seen(partition: number, offset: string): void {
    this.last.set(partition, BigInt(offset));
  }

  committable(partition: number, open: { partition: number; firstOffset: string }[]): string | undefined {
    const last = this.last.get(partition);
    if (last === undefined) return undefined;
    let next = last + 1n;
    for (const o of open) {
      if (o.partition === partition && BigInt(o.firstOffset) < next) next = BigInt(o.firstOffset);
    }
    return next.toString();
  }

  clear(): void {
    this.last.clear();
  }
}
