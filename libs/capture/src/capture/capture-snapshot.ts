import { performance } from 'node:perf_hooks';
import { ErrorCodes, isPvError } from '@pagevault/errors';
import { Consistency, type SnapshotWriter } from '@pagevault/format';
import { assertProcess, freezeProcesses, type FrozenGroup } from '../freeze/freeze-group';
import { captureProcess } from './capture-process';
import { checkOptions, type CaptureOptions, type CaptureResult } from './options';

/**
 * Captures the memory of one process as one snapshot through `opts.writer`: begin, every VMA in address
 * order, end. Frozen (default) and PreCopy consistency freeze every thread for the whole read and always
 * thaw (success, error, or SIGTERM/SIGINT of the agent once installThawOnSignals() is installed); Live
 * reads while the target runs. On any failure the writer is aborted (so no consumer takes the stream as
 * complete) and the error rethrown: PV_NO_SUCH_PROCESS, PV_PROCESS_EXITED naming the pid,
 * PV_PERMISSION_DENIED, PV_FREEZE_FAILED, PV_READ_FAILED...
 */
export async function captureSnapshot(opts: CaptureOptions): Promise<CaptureResult> {
  const t0 = performance.now();
  let frozen: FrozenGroup | undefined;
  let result: CaptureResult | undefined;
  try {
    checkOptions(opts);
    const consistency = opts.consistency ?? Consistency.Frozen;
    assertProcess(opts.pid);
    if (consistency !== Consistency.Live) frozen = await freezeProcesses([opts.pid], opts.freeze);
    const f = frozen;
    result = await captureProcess(opts, consistency, f && (() => f.check()));
    return result;
  } catch (e) {
    abortWriter(opts.writer, e);
    throw e;
  } finally {
    if (frozen) {
      frozen.thaw();
      if (result) result.stats.freezeMs = performance.now() - frozen.frozenAt;
    }
    // The whole capture, the freeze and the thaw included: never less than the freeze.
    if (result) result.stats.totalMs = performance.now() - t0;
  }
}

/** Ends the writer's stream as aborted with the error's code; never throws (the sink may be the failure). */
export function abortWriter(writer: SnapshotWriter, e: unknown): void {
  const code = isPvError(e) ? e.code : ErrorCodes.SNAPSHOT_FAILED;
  const message = e instanceof Error ? e.message : String(e);
  try {
    writer.abort(code, message);
  } catch {
    // The emit callback itself failed: there is no way left to tell the consumer.
  }
}
