/**
 * The stdout lines of a bench's helper process, for waiting on the one that reports a figure.
 *
 * @module
 */

/**
 * Reads `stdout` to its end; `line(pattern)` resolves with the first line matching `pattern`, or
 * rejects once the stream has ended without one (the process died: no wait for ever).
 */
export function stdoutLines(
  stdout: ReadableStream<Uint8Array>,
): (pattern: RegExp) => Promise<string> {
  const lines: string[] = [];
  const waiters: {
    pattern: RegExp;
    resolve: (line: string) => void;
    reject: (error: Error) => void;
  }[] = [];
  let ended = false;
  const noLine = (pattern: RegExp) =>
    new Error(`the helper process's output ended without a line matching ${pattern}`);
  (async () => {
    let buffer = "";
    try {
      for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        let newline;
        while ((newline = buffer.indexOf("\n")) !== -1) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          lines.push(line);
          for (const waiter of [...waiters]) {
            if (waiter.pattern.test(line)) {
              waiters.splice(waiters.indexOf(waiter), 1);
              waiter.resolve(line);
            }
          }
        }
      }
    } finally {
      ended = true;
      for (const waiter of waiters.splice(0)) waiter.reject(noLine(waiter.pattern));
    }
  })();
  return (pattern) => {
    const found = lines.find((l) => pattern.test(l));
    if (found !== undefined) return Promise.resolve(found);
    if (ended) return Promise.reject(noLine(pattern));
    return new Promise((resolve, reject) => waiters.push({ pattern, resolve, reject }));
  };
}
