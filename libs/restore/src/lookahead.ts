/** Iterates `it` one step ahead: the next item is being produced while the caller handles this one. */
export async function* lookahead<T>(it: AsyncIterator<T>): AsyncGenerator<T> {
  // The step being produced may fail while the caller is still busy with this one: mark its promise
  // handled now (it is awaited, and its error thrown, when the caller comes back for it).
  const pull = () => {
    const p = it.next();
    p.catch(() => undefined);
    return p;
  };
  let next = pull();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = pull();
      yield r.value;
    }
  } finally {
    // Stopped early (the consumer failed or returned): let the producer finish its step, then close it.
    await next.catch(() => undefined);
    await it.return?.(undefined);
  }
}
