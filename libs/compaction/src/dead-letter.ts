import { isPvError } from '@pagevault/errors';
import type { FrameProducer, FrameRecord } from '@pagevault/framelog';

/** Key of a dead letter whose record names no snapshot: no key, and no frame header to read one from. */
export const UNIDENTIFIED = 'unidentified';

export interface DeadLetterLog {
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

/**
 * The compactor's dead letters: each offending record, as it came, to the dead-letter log under its
 * snapshot's id (the record's own key may be empty, or shared by many snapshots).
 *
 * The partition waits for a dead letter to be acknowledged. A log that is down (retriable) stops the
 * batch, which is delivered again; a log that refuses this record for good (too large for its topic,
 * say) must not hold the partition forever behind one bad record: that is logged and the partition goes
 * on. A producer that failed a delivery keeps failing, so either way the next dead letter gets a new one.
 */
export class DeadLetters {
  private producer: FrameProducer | undefined;

  constructor(
    private readonly open: () => FrameProducer,
    private readonly log: DeadLetterLog,
  ) {}

  /** CompactionOptions.deadLetter. */
  readonly write = async (rec: FrameRecord, snapshotId: string, code: string, reason: string): Promise<void> => {
    const key = snapshotId || UNIDENTIFIED;
    const where = { snapshot: key, partition: rec.partition, offset: rec.offset, code, reason };
    this.log.warn(where, 'dead letter');
    if (rec.value.length === 0) return; // a timeout: no frame to blame
    const p = (this.producer ??= this.open());
    try {
      await p.send(key, [rec.value]);
      await p.flush();
    } catch (e) {
      this.producer = undefined;
      void p.close().catch(() => undefined);
      if (!isPvError(e) || e.retriable) throw e;
      this.log.error({ ...where, error: e.message }, 'the dead-letter log refused this record: it is only in this log line');
    }
  };

  async close(): Promise<void> {
    await this.producer?.close();
    this.producer = undefined;
  }
}
