import { describe, expect, it } from 'vitest';
import { ErrorCodes, PvError } from '@pagevault/errors';
import type { FrameProducer, FrameRecord } from '@pagevault/framelog';
import { DeadLetters, REASON_MAX_BYTES, UNIDENTIFIED, deadLetterHeaders } from './dead-letter';

/** A producer whose every flush fails with `error` once, as a failed delivery poisons a real one. */
function producers(errors: (PvError | undefined)[]) {
  const opened: { sent: [string, Buffer[]][]; closed: boolean }[] = [];
  const open = (): FrameProducer => {
    const me = { sent: [] as [string, Buffer[]][], closed: false };
    const error = errors[opened.length];
    opened.push(me);
    return {
      send: async (key, frames) => void me.sent.push([key, frames]),
      flush: async () => {
        if (error) throw error;
      },
      close: async () => void (me.closed = true),
    };
  };
  return { open, opened };
}

const rec = (value: string): FrameRecord => ({ key: '', value: Buffer.from(value), partition: 3, offset: '17' });
const quiet = { warn: () => undefined, error: () => undefined };

describe('DeadLetters', () => {
  it('sends under the snapshot id, or unidentified, reusing one producer', async () => {
    const p = producers([]);
    const d = new DeadLetters(p.open, quiet);
    await d.write(rec('a'), 'ab'.repeat(16), 'PV_X', 'r');
    await d.write(rec('b'), '', 'PV_X', 'r');
    expect(p.opened).toHaveLength(1);
    expect(p.opened[0]!.sent.map(([k, [v]]) => [k, v!.toString()])).toEqual([['ab'.repeat(16), 'a'], [UNIDENTIFIED, 'b']]);
  });

  it('says in headers where the record was and why it was refused, its reason cut to a bounded length', () => {
    expect(deadLetterHeaders(rec('a'), 'PV_FRAME_BAD_CRC', 'bad crc', 'pv-frames')).toEqual({
      'pv-dlq-topic': 'pv-frames', 'pv-dlq-partition': '3', 'pv-dlq-offset': '17', 'pv-dlq-code': 'PV_FRAME_BAD_CRC', 'pv-dlq-reason': 'bad crc',
    });
    const long = deadLetterHeaders(rec('a'), 'PV_X', 'x'.repeat(5000))['pv-dlq-reason']!;
    expect(Buffer.byteLength(long)).toBe(REASON_MAX_BYTES);
    expect(long.endsWith('…')).toBe(true);
    const wide = deadLetterHeaders(rec('a'), 'PV_X', 'ж'.repeat(5000))['pv-dlq-reason']!; // 2 bytes a character
    expect(Buffer.byteLength(wide)).toBeLessThanOrEqual(REASON_MAX_BYTES);
    expect(wide.startsWith('жж')).toBe(true);
  });

  it('sends nothing for a snapshot that timed out (no record to blame), but an empty record from the topic as it came', async () => {
    const p = producers([]);
    const d = new DeadLetters(p.open, quiet);
    await d.write({ ...rec(''), value: Buffer.alloc(0) }, 'id', 'PV_TIMEOUT', 'r');
    expect(p.opened).toHaveLength(0);
    await d.write({ ...rec(''), value: Buffer.alloc(0) }, '', 'PV_FRAME_TRUNCATED', 'a tombstone');
    expect(p.opened[0]!.sent.map(([k, [v]]) => [k, v!.length])).toEqual([[UNIDENTIFIED, 0]]);
  });

  it('rethrows a retriable failure (the batch is delivered again) and opens a new producer next time', async () => {
    const down = new PvError(ErrorCodes.LOG_UNAVAILABLE, 'brokers down', { retriable: true });
    const p = producers([down]);
    const d = new DeadLetters(p.open, quiet);
    await expect(d.write(rec('a'), 'id', 'PV_X', 'r')).rejects.toBe(down);
    expect(p.opened[0]!.closed).toBe(true);
    await d.write(rec('a'), 'id', 'PV_X', 'r');
    expect(p.opened).toHaveLength(2);
    expect(p.opened[1]!.sent).toHaveLength(1);
  });

  it('logs a record refused for good and goes on, with a new producer', async () => {
    const tooBig = new PvError(ErrorCodes.LOG_UNAVAILABLE, 'message larger than the max message size', { retriable: false });
    const p = producers([tooBig]);
    const errors: object[] = [];
    const d = new DeadLetters(p.open, { warn: () => undefined, error: (f) => void errors.push(f) });
    await d.write(rec('big'), 'id', 'PV_FRAME_BAD_CRC', 'crc');
    expect(errors).toEqual([expect.objectContaining({ snapshot: 'id', partition: 3, offset: '17', code: 'PV_FRAME_BAD_CRC', error: tooBig.message })]);
    await d.write(rec('small'), 'id2', 'PV_X', 'r');
    expect(p.opened.map((o) => o.sent.length)).toEqual([1, 1]);
  });

  it('rethrows what is not a PvError (a bug is not a refusal)', async () => {
    const p = producers([new TypeError('boom') as unknown as PvError]);
    await expect(new DeadLetters(p.open, quiet).write(rec('a'), 'id', 'PV_X', 'r')).rejects.toThrow('boom');
  });

  it('gives a dead letter up after timeoutMs instead of holding the partition, and has the topic checked again', async () => {
    let opened = 0;
    let closed = 0;
    const hanging = (): FrameProducer => {
      opened++;
      return { send: async () => undefined, flush: () => new Promise<void>(() => undefined), close: async () => void closed++ };
    };
    const errors: object[] = [];
    let ensured = 0;
    const d = new DeadLetters(hanging, { warn: () => undefined, error: (f) => void errors.push(f) }, { timeoutMs: 50, ensureTopic: async () => void ensured++ });
    const t0 = Date.now();
    await d.write(rec('a'), 'id', 'PV_FRAME_BAD_CRC', 'crc');
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(errors).toEqual([expect.objectContaining({ snapshot: 'id', partition: 3, offset: '17' })]);
    expect([opened, closed, ensured]).toEqual([1, 1, 1]);
    await d.write(rec('b'), 'id2', 'PV_X', 'r'); // a new producer; the topic is not checked again within the minute
    expect([opened, closed, ensured]).toEqual([2, 2, 1]);
  });
});
