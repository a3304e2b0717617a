/**
 * Stand-ins for the session server's in-process tests: a scripted `fetch` for the simulation
 * servers' `/load`, a WebSocket-like subscriber socket, a recording logger and a recording mailer.
 * None of them opens a socket or waits on the wall clock.
 *
 * @module
 */
export { type LogLine, recordingLogger } from "../fakes/logger.ts";
import type { HubSocket } from "../../session/availability.ts";
import type { Mail, Mailer } from "../../session/notify.ts";

/** How a fake simulation server answers `/load`. */
export type LoadAnswer =
  /** 200 (or `status`) with this body. */
  | {
    readonly body: string;
    readonly status?: number;
    readonly headers?: Record<string, string>;
  }
  /** Connection refused: fetch rejects with a TypeError. */
  | { readonly refuse: true }
  /** No answer at all until the request is aborted. */
  | { readonly hang: true };

/** One request the fake fetch received. */
export interface FetchCall {
  readonly url: string;
  readonly signal: AbortSignal | undefined;
}

/** A `fetch` whose answers the test scripts per URL; unknown URLs are refused. */
export class FakeFetch {
  readonly calls: FetchCall[] = [];
  #answers = new Map<string, LoadAnswer>();
  #hanging = 0;

  /** Sets what `url` answers from now on. */
  answer(url: string, answer: LoadAnswer): void {
    this.#answers.set(url, answer);
  }

  /** Shorthand: `url` answers 200 with `load` as its body. */
  load(url: string, load: number | string): void {
    this.answer(url, { body: String(load) });
  }

  /** Requests received for `url`. */
  callsTo(url: string): FetchCall[] {
    return this.calls.filter((c) => c.url === url);
  }

  /** Requests that hang and have not been aborted yet. */
  get hanging(): number {
    return this.#hanging;
  }

  readonly fetch: typeof fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const signal = init?.signal ?? undefined;
    this.calls.push({ url, signal });
    const answer = this.#answers.get(url) ?? { refuse: true };
    if (signal?.aborted) return Promise.reject(signal.reason);
    if ("refuse" in answer) {
      return Promise.reject(new TypeError(`error sending request for url (${url})`));
    }
    if ("hang" in answer) {
      this.#hanging++;
      return new Promise((_, reject) => {
        signal?.addEventListener("abort", () => {
          this.#hanging--;
          reject(signal.reason);
        }, { once: true });
      });
    }
    return Promise.resolve(
      new Response(answer.body, { status: answer.status ?? 200, headers: answer.headers ?? {} }),
    );
  };
}

/**
 * A server-side WebSocket as the availability hub sees it. It opens when the test says so and
 * closes either at once when asked (like a responsive peer) or only when the test says so.
 */
export class FakeSocket extends EventTarget implements HubSocket {
  readyState: number = WebSocket.CONNECTING;
  readonly sent: string[] = [];
  /** The code and reason `close()` was called with. */
  closedWith: { code: number | undefined; reason: string | undefined } | undefined;
  /** When true, `send` throws as a socket closing under the server does. */
  failSends = false;
  readonly #confirmClose: boolean;

  /** `confirmClose: false`: a peer that never answers the close handshake. */
  constructor(options: { confirmClose?: boolean } = {}) {
    super();
    this.#confirmClose = options.confirmClose ?? true;
  }

  send(data: string): void {
    if (this.readyState !== WebSocket.OPEN) throw new DOMException("not open", "InvalidStateError");
    if (this.failSends) throw new DOMException("broken pipe", "NetworkError");
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    if (this.readyState === WebSocket.CLOSED) return;
    this.readyState = WebSocket.CLOSING;
    if (this.#confirmClose) queueMicrotask(() => this.peerClosed(code ?? 1005));
  }

  /** The handshake completed. */
  open(): void {
    this.readyState = WebSocket.OPEN;
    this.dispatchEvent(new Event("open"));
  }

  /** The peer sent `data`. */
  receive(data: string): void {
    this.dispatchEvent(new MessageEvent("message", { data }));
  }

  /** The connection is gone (the peer closed, or confirmed our close). */
  peerClosed(code = 1000): void {
    if (this.readyState === WebSocket.CLOSED) return;
    this.readyState = WebSocket.CLOSED;
    this.dispatchEvent(new CloseEvent("close", { code }));
  }
}

/** A mailer that keeps what it is asked to send; with `fail`, every sending rejects. */
export class FakeMailer implements Mailer {
  readonly sent: Mail[] = [];
  fail = false;

  send(mail: Mail): Promise<void> {
    this.sent.push(mail);
    return this.fail
      ? Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:25"))
      : Promise.resolve();
  }
}
