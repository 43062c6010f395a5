import { ErrorCodes, isPvError } from '@pagevault/errors';
import type { FrameProducer, FrameRecord, RecordHeaders } from '@pagevault/framelog';

/** Key of a dead letter whose record names no snapshot: no key, and no frame header to read one from. */
export const UNIDENTIFIED = 'unidentified';

export interface DeadLetterLog {
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export interface DeadLetterOptions {
  /**
   * The longest one dead letter may take (default 10 s). Past it the record is given up — logged with its
   * partition and offset, where the frame topic still holds it — rather than holding the partition (and,
   * past the group's session timeout, its membership) while the producer retries: a deleted dead-letter
   * topic made kafkajs retry for ~75 s per bad record.
   */
  timeoutMs?: number;
  /** Creates the dead-letter topic if missing; run (at most once a minute) after a dead letter fails. */
  ensureTopic?: () => Promise<void>;
  /** The frame topic, named in each dead letter's headers (deadLetterHeaders). */
  sourceTopic?: string;
}

/**
 * The longest error reason a dead letter's headers carry, in UTF-8 bytes (the rest is in the log): with
 * the other headers it stays within the 4 KiB a record has beside a frame of the largest size.
 */
export const REASON_MAX_BYTES = 1024;

/**
 * What a dead letter says besides its record (Kafka headers, as Kafka Connect's dead-letter queues do):
 * where it was in the frame topic — topic, partition and offset, which also tell a replay's second copy
 * of a dead letter from a new one — and why it was refused.
 */
export function deadLetterHeaders(rec: FrameRecord, code: string, reason: string, sourceTopic?: string): RecordHeaders {
  return {
    ...(sourceTopic ? { 'pv-dlq-topic': sourceTopic } : {}),
    'pv-dlq-partition': String(rec.partition),
    'pv-dlq-offset': rec.offset,
    'pv-dlq-code': code,
    'pv-dlq-reason': cutUtf8(reason, REASON_MAX_BYTES),
  };
}

/** `s` if it fits in `max` UTF-8 bytes, else its longest prefix that fits with an ellipsis (never half a character). */
function cutUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let out = '';
  let bytes = 3; // the ellipsis
  for (const ch of s) {
    bytes += Buffer.byteLength(ch);
    if (bytes > max) break;
    out += ch;
  }
  return `${out}…`;
}

/**
 * The compactor's dead letters: each offending record, as it came, to the dead-letter log under its
 * snapshot's id (the record's own key may be empty, or shared by many snapshots), with headers saying
 * where it came from and why (deadLetterHeaders). At least once: a batch delivered again after a restart
 * dead-letters its bad records again, with the same source headers.
 *
 * The partition waits for a dead letter to be acknowledged. A log that is down (retriable) stops the
 * batch, which is delivered again; a log that refuses this record for good (too large for its topic,
 * say), or takes longer than `timeoutMs`, must not hold the partition behind one bad record: that is
 * logged and the partition goes on. A producer that failed a delivery keeps failing, so either way the
 * next dead letter gets a new one.
 */
export class DeadLetters {
  private producer: FrameProducer | undefined;
  private readonly timeoutMs: number;
  private lastEnsure = 0;

  constructor(
    private readonly open: () => FrameProducer,
    private readonly log: DeadLetterLog,
    private readonly opts: DeadLetterOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** CompactionOptions.deadLetter. */
  readonly write = async (rec: FrameRecord, snapshotId: string, code: string, reason: string): Promise<void> => {
    const key = snapshotId || UNIDENTIFIED;
    const where = { snapshot: key, partition: rec.partition, offset: rec.offset, code, reason };
    this.log.warn(where, 'dead letter');
    if (code === ErrorCodes.TIMEOUT && rec.value.length === 0) return; // a snapshot timed out: no record to blame
    const p = (this.producer ??= this.open());
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), this.timeoutMs)));
    try {
      const sent = (async () => {
        await p.send(key, [rec.value], undefined, deadLetterHeaders(rec, code, reason, this.opts.sourceTopic));
        await p.flush();
      })();
      sent.catch(() => undefined); // once late, its failure is nobody's
      if ((await Promise.race([sent, late])) === 'late') {
        this.drop(p);
        this.log.error(where, `the dead-letter log did not take this record within ${this.timeoutMs} ms: given up (the frame topic still holds it at ${rec.partition}/${rec.offset})`);
      }
    } catch (e) {
      this.drop(p);
      if (!isPvError(e) || e.retriable) throw e;
      this.log.error({ ...where, error: e.message }, 'the dead-letter log refused this record: it is only in this log line');
    } finally {
      clearTimeout(timer);
    }
  };

  async close(): Promise<void> {
    await this.producer?.close();
    this.producer = undefined;
  }

  /** Forgets a producer that failed (it stays failed) or hangs, and has the topic checked again. */
  private drop(p: FrameProducer): void {
    if (this.producer === p) this.producer = undefined;
    void p.close().catch(() => undefined);
    const now = Date.now();
    if (this.opts.ensureTopic && now - this.lastEnsure >= 60_000) {
      this.lastEnsure = now;
      this.opts.ensureTopic().catch((e: unknown) => this.log.error({ error: (e as Error).message }, 'the dead-letter topic could not be created'));
    }
  }
}
