/**
 * The stdout lines of a bench's helper process, for waiting on the one that reports a figure.
 *
 * @module
 */

/** Reads `stdout` to its end; `line(pattern)` resolves with the first line matching `pattern`. */
export function stdoutLines(
  stdout: ReadableStream<Uint8Array>,
): (pattern: RegExp) => Promise<string> {
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  (async () => {
    let buffer = "";
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
  })();
  return (pattern) => {
    const found = lines.find((l) => pattern.test(l));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => waiters.push({ pattern, resolve }));
  };
}
