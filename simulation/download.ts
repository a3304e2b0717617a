/**
 * One bounded HTTP download: a time limit covering the whole transfer, a size limit checked as
 * the body streams in, and the caller's AbortSignal (the browser left).
 *
 * @module
 */

/** Why a download failed; the message is fit for the browser after a prefix naming the source. */
export class DownloadError extends Error {
  override name = "DownloadError";
}

/** Limits of one download. */
export interface DownloadLimits {
  readonly fetch: typeof fetch;
  readonly timeoutSeconds: number;
  readonly maxBytes: number;
  readonly signal?: AbortSignal | undefined;
  /** Told the bytes received so far (and the declared total, if any) after each chunk of a 2xx. */
  readonly onProgress?: ((received: number, total: number | undefined) => void) | undefined;
}

/** A completed response: its status and its whole body. */
export interface Downloaded {
  readonly status: number;
  readonly body: Uint8Array;
}

/**
 * Fetches `url` and reads the whole body. Throws a DownloadError on timeout, on a body larger
 * than `maxBytes` and on network errors; rethrows the caller's abort reason when it aborted.
 */
export async function download(
  url: string,
  init: RequestInit,
  limits: DownloadLimits,
): Promise<Downloaded> {
  limits.signal?.throwIfAborted();
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DownloadError(`timed out after ${limits.timeoutSeconds} s`));
  }, limits.timeoutSeconds * 1000);
  const onAbort = () => controller.abort(limits.signal?.reason);
  limits.signal?.addEventListener("abort", onAbort, { once: true });
  let response: Response | undefined;
  try {
    response = await limits.fetch(url, { ...init, signal: controller.signal });
    const declared = Number(response.headers.get("content-length") ?? "NaN");
    if (declared > limits.maxBytes) throw tooLarge(limits.maxBytes);
    const expected = Number.isSafeInteger(declared) && declared > 0 ? declared : undefined;
    // An error page is no progress.
    const onProgress = response.ok ? limits.onProgress : undefined;
    const chunks: Uint8Array[] = [];
    let total = 0;
    onProgress?.(0, expected);
    if (response.body) {
      for await (const chunk of response.body) {
        total += chunk.length;
        if (total > limits.maxBytes) throw tooLarge(limits.maxBytes);
        chunks.push(chunk);
        onProgress?.(total, expected);
      }
    }
    const body = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.length;
    }
    return { status: response.status, body };
  } catch (error) {
    if (limits.signal?.aborted) throw limits.signal.reason;
    if (timedOut) throw new DownloadError(`timed out after ${limits.timeoutSeconds} s`);
    if (error instanceof DownloadError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new DownloadError(reason, { cause: error });
  } finally {
    clearTimeout(timer);
    limits.signal?.removeEventListener("abort", onAbort);
    if (response?.body && !response.bodyUsed) await response.body.cancel().catch(() => {});
  }
}

function tooLarge(maxBytes: number): DownloadError {
  return new DownloadError(`larger than ${maxBytes} bytes`);
}
