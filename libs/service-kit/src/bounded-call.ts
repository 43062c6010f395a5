/**
 * A call to a dependency that may hang (a stopped broker or bucket), made for something that must answer
 * in bounded time (/readyz, a metrics scrape): one call at a time — a call still running from an earlier
 * ask is waited on again, not started once more, so a dependency that is down holds one request however
 * often it is asked — and an answer within `timeoutMs`, `late` when the call has not settled by then.
 */
export function boundedCall<T, L>(call: () => Promise<T>, timeoutMs: number, late: L): () => Promise<T | L> {
  let running: Promise<T> | undefined;
  return async () => {
    const p = (running ??= call().finally(() => (running = undefined)));
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<L>((resolve) => {
      timer = setTimeout(() => resolve(late), timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([p, waited]);
    } finally {
      clearTimeout(timer);
    }
  };
}
