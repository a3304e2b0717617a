/**
 * A spawner for in-process tests: each "process" is scripted by the test, which writes Webots'
 * output lines, makes it exit, and sees the signals its group got. A process exits on TERM (code
 * 0, like the stand-in Webots) unless told to ignore it, and always on KILL.
 *
 * @module
 */
import type {
  ChildProcessHandle,
  GroupSignal,
  Spawner,
  SpawnOptions,
} from "../../simulation/process.ts";

/** One scripted process. */
export class FakeProcess implements ChildProcessHandle {
  readonly signals: GroupSignal[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  #lines: string[] = [];
  #ended = false;
  #wake: (() => void) | undefined;
  #exit!: (status: Deno.CommandStatus) => void;
  #exited = false;

  constructor(
    readonly pid: number,
    readonly command: string,
    readonly args: readonly string[],
    readonly options: SpawnOptions,
    /** When true, TERM does nothing (like a Webots that hangs). */
    public ignoreTerm = false,
  ) {
    this.status = new Promise((resolve) => this.#exit = resolve);
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Webots prints `line`. */
  print(...lines: string[]): void {
    this.#lines.push(...lines);
    this.#wakeUp();
  }

  /** The process exits with `code`, or is killed by `signal`; its output ends. */
  exit(code: number, signal: Deno.Signal | null = null): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#ended = true;
    this.#wakeUp();
    this.#exit({ success: code === 0 && signal === null, code, signal });
  }

  signalGroup(signal: GroupSignal): Promise<void> {
    if (this.#exited) return Promise.resolve();
    this.signals.push(signal);
    if (signal === "KILL") this.exit(137, "SIGKILL");
    else if (!this.ignoreTerm) this.exit(0);
    return Promise.resolve();
  }

  get lines(): AsyncIterable<string> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<string>> => {
          while (true) {
            const line = this.#lines.shift();
            if (line !== undefined) return { value: line, done: false };
            if (this.#ended) return { value: undefined, done: true };
            await new Promise<void>((resolve) => this.#wake = resolve);
          }
        },
      }),
    };
  }

  #wakeUp() {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** A spawner that hands out FakeProcesses and keeps them for the test. */
export class FakeSpawner implements Spawner {
  readonly spawned: FakeProcess[] = [];
  #nextPid = 40_000;

  /** Whether processes spawned from now on ignore TERM. */
  ignoreTerm = false;

  spawn(command: string, args: readonly string[], options: SpawnOptions): FakeProcess {
    const process = new FakeProcess(this.#nextPid++, command, args, options, this.ignoreTerm);
    this.spawned.push(process);
    return process;
  }
}
