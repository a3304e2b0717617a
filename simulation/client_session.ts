/**
 * One browser's life on `/client`: preparing → starting → running → closed.
 *
 * A session holds at most one simulation: a Webots run (`webots_run.ts`: port, instance folder,
 * record, process). Whatever ends the session (the browser leaving, Webots exiting, a failure,
 * the server shutting down) runs the same `close()`, which waits for a preparation in flight to
 * give up and then stops the run, exactly once.
 *
 * @module
 */
import { type Clock, sleep } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import {
  ACTIVITY,
  type ClientGeneration,
  clientGeneration,
  type ClientMessage,
  type ClientProtocol,
  formatError,
  formatLoading,
  formatResetController,
  formatShutdownTimeout,
  formatWebotsUrl,
  parseWebotsLine,
} from "../shared/protocol.ts";
import { webotsStreamUrl } from "../shared/urls.ts";
import { ClientError, NoSlotError, UnavailableError } from "./client_error.ts";
import type { SimulationConfig } from "./config.ts";
import { describeProgress, type OnProgress, startingWebots, throttleProgress } from "./progress.ts";
import {
  IGNORED_START_EVENTS,
  type ServerEndReason,
  type StartEvents,
  type StartFailureReason,
} from "./metrics_export.ts";
import type { Project, Projects } from "./projects.ts";
import type { WebotsProcess, WebotsRun, WebotsRuns } from "./webots_run.ts";
import type { HeldSlot } from "./leases.ts";

/** Where a session is in its life. */
export type SessionState = "waiting" | "preparing" | "starting" | "running" | "closed";

/** The socket a session talks to: only what it needs of a WebSocket. */
export interface ClientSocket {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

/** What a session needs from the rest of the server. */
export interface SessionDeps {
  readonly config: Pick<
    SimulationConfig,
    | "startTimeout"
    | "fullyQualifiedDomainName"
    | "portRewrite"
    | "clientProtocol"
    | "timeout"
    | "idleTimeout"
  >;
  readonly logger: Logger;
  readonly ssl: boolean;
  /** Fills a run's folder with the project and resets controllers. */
  readonly projects: Projects;
  /** Opens Webots runs. */
  readonly webotsRuns: WebotsRuns;
  /** The start timeout, the time limit, download progress pacing and the session's start time. */
  readonly clock: Clock;
  /** Called whenever the state or idle flag changes (the monitor and `/load` count sessions). */
  readonly onChange: () => void;
  /** Hears each start's beginning and outcome (`/metrics`); default: nobody. */
  readonly starts?: StartEvents;
  /**
   * Asked when a start is requested: the reason it is refused (draining, too many simulations
   * from one address), or undefined to go ahead. Default: every start goes ahead.
   */
  readonly admit?: (session: ClientSession) => string | undefined;
  /** Hears the sessions the server ends itself (`/metrics`); default: nobody. */
  readonly ended?: (reason: ServerEndReason) => void;
}

/** The step a start is in, which tells why it failed (`START_FAILURE_REASONS`). */
type StartStep = "open" | "project" | "release" | "ready";

/** A row of the monitor page's table. */
export interface SessionInfo {
  readonly id: string;
  readonly state: SessionState;
  readonly idle: boolean;
  readonly world: string;
  readonly port: number | undefined;
  readonly pid: number | undefined;
  /** The Webots release the simulation runs on, once started. */
  readonly release: string | undefined;
  readonly remote: string;
  readonly startedAt: number;
  /** Since when the simulation is paused (ms since the epoch), or undefined while it runs. */
  readonly idleSince?: number | undefined;
}

/** One browser connection on `/client`. */
export class ClientSession {
  #state: SessionState = "waiting";
  #idle = true;
  /** Set once the run has stopped: its slot (port) is free again. */
  #released = false;
  #world = "";
  #run: WebotsRun | undefined;
  #project: Project | undefined;
  #webots: WebotsProcess | undefined;
  /** The step in flight: opening the run, preparing the project, or starting Webots. */
  #inFlight: Promise<unknown> | undefined;
  #closing: Promise<void> | undefined;
  /** Decided by the first `init`/`start`; until then nothing generation-specific is sent. */
  #generation: ClientGeneration = "r2021b";
  readonly #abort = new AbortController();
  readonly #log: Logger;
  readonly #startedAt: number;
  /** The step of a start not yet ready, failed or abandoned; undefined otherwise. */
  #startStep: StartStep | undefined;
  #startBegan = 0;
  /** When the simulation last became paused (or the session began). */
  #idleSince: number;
  /** Cancels the idle limit's timers of the current pause. */
  #idleLimit: AbortController | undefined;

  constructor(
    readonly id: string,
    private readonly socket: ClientSocket,
    /** Host name put in `webots:` URLs. */
    private readonly host: string,
    private readonly remote: string,
    private readonly deps: SessionDeps,
    /** The slot of the slot lease this socket came with (`/lease/<token>/client`), if any. */
    private readonly slot?: HeldSlot,
  ) {
    this.#log = deps.logger.child({ client: id, remote });
    this.#startedAt = deps.clock.now();
    this.#idleSince = this.#startedAt;
    this.#log.info({}, "New client");
  }

  /** Whether this session came with a slot lease (it holds its slot before Webots runs). */
  get leased(): boolean {
    return this.slot !== undefined;
  }

  /** The session's current state. */
  get state(): SessionState {
    return this.#state;
  }

  /** The client's address. */
  get address(): string {
    return this.remote;
  }

  /** True while Webots runs with the simulation paused (or not yet told to run). */
  get idle(): boolean {
    return this.#idle;
  }

  /**
   * True while the session holds a Webots process (it counts towards load): from its start until
   * its run has stopped, so that `/load` frees the slot only when `maxConnections` does.
   */
  get hasWebots(): boolean {
    return this.#webots !== undefined && !this.#released;
  }

  /** A snapshot for the monitor page. */
  info(): SessionInfo {
    return {
      id: this.id,
      state: this.#state,
      idle: this.#idle,
      world: this.#world,
      port: this.#run?.port,
      pid: this.#webots?.pid,
      release: this.#webots?.release,
      remote: this.remote,
      startedAt: this.#startedAt,
      idleSince: this.#idle ? this.#idleSince : undefined,
    };
  }

  /** Handles one parsed browser message. Never throws: failures are sent as `error:`. */
  async handle(message: ClientMessage): Promise<void> {
    try {
      switch (message.kind) {
        case "init":
        case "start":
          await this.#startSimulation(message);
          return;
        case "reset controller":
          try {
            await this.#resetController(message.path);
          } catch (error) {
            // A bad reset request must not cost the browser its running simulation.
            if (!(error instanceof ClientError)) throw error;
            this.reject(error.message);
          }
          return;
        default: {
          const unreachable: never = message;
          throw new Error(`unhandled message ${JSON.stringify(unreachable)}`);
        }
      }
    } catch (error) {
      await this.#fail(error);
    }
  }

  /** Tells the browser about a message that could not be parsed; the session goes on. */
  reject(reason: string): void {
    this.#log.warn({ reason }, "rejected client message");
    this.#send(formatError(reason));
  }

  /**
   * Tells the browser the simulation will be ended in `seconds` (`shutdownTimeout:`), when it
   * understands that message (R2023 clients; older ones would log it as unknown).
   */
  warnShutdown(seconds: number): void {
    if (this.#isClosed() || !this.#isCurrent()) return;
    this.#send(formatShutdownTimeout(Math.max(0, Math.ceil(seconds))));
  }

  /**
   * The server ends the session (drain deadline, idle limit, an operator): the browser gets
   * `error: <message>` and a normal close with `reason`, then the usual clean-up runs.
   */
  end(reason: string, message: string, why?: ServerEndReason): Promise<void> {
    if (!this.#isClosed()) {
      this.#log.info({ pid: this.#webots?.pid, reason }, "ended by the server");
      if (why !== undefined) this.deps.ended?.(why);
      this.#send(formatError(message));
      this.socket.close(1000, reason);
    }
    return this.close(reason);
  }

  /**
   * Ends the session: stops its Webots run (process group, instance folder, record, port).
   * Idempotent; resolves once everything is cleaned up.
   */
  close(reason: string): Promise<void> {
    this.#closing ??= this.#cleanUp(reason);
    return this.#closing;
  }

  async #startSimulation(message: Extract<ClientMessage, { kind: "init" | "start" }>) {
    if (this.#state !== "waiting") {
      this.#send(formatError("only one simulation can run per connection"));
      return;
    }
    this.#generation = this.#generationOf(message);
    const refusal = this.deps.admit?.(this);
    if (refusal !== undefined) {
      this.#log.info({ reason: refusal }, "start refused");
      this.#send(formatError(refusal));
      // 1013 "try again later": the refusal is about now, not about the request.
      this.socket.close(1013, "start refused");
      await this.close("start refused");
      return;
    }
    this.#setState("preparing");
    this.#startStep = "open";
    this.#startBegan = this.deps.clock.now();
    this.#starts.requested();
    // A leased slot's port goes to the run, which owns it from now on.
    const opening = this.deps.webotsRuns.open(this.#log, this.slot?.handOver());
    this.#inFlight = opening;
    const run = await opening;
    this.#run = run;
    if (this.#isClosed()) {
      // close() ran while the run was being opened: it has not seen it.
      await run.stop();
      return;
    }
    const { port } = run;
    let mode: "x3d" | "mjpeg" | undefined;
    let controllerEdit = false;
    const signal = this.#abort.signal;
    this.#startStep = "project";
    if (message.kind === "init") {
      this.#world = `${message.init.app}/${message.init.world}`;
      this.#log.info(
        { app: message.init.app, world: message.init.world, port },
        "Setup client",
      );
      const preparing = this.deps.projects.prepareInit(
        message.init,
        run.dir,
        signal,
        this.#progressReporter(),
      );
      this.#inFlight = preparing;
      const prepared = await preparing;
      this.#project = prepared.project;
      controllerEdit = prepared.controllerEdit;
    } else {
      this.#world = message.url;
      mode = message.mode;
      this.#log.info({ url: message.url, mode, port }, "Starting simulation");
      const preparing = this.deps.projects.prepareStart(
        message.url,
        run.dir,
        signal,
        this.#progressReporter(),
      );
      this.#inFlight = preparing;
      this.#project = await preparing;
    }
    if (this.#isClosed()) return;
    this.#setState("starting");
    this.#startStep = "release";
    const starting = run.start(
      { worldFile: this.#project.worldFile, mode, controllerEdit },
      (release) => this.#loading(startingWebots(release)),
    );
    this.#inFlight = starting;
    const webots = await starting;
    this.#webots = webots;
    if (this.#startStep === "release") this.#startStep = "ready";
    // close() has stopped the run while it was being started.
    if (this.#isClosed()) return;
    this.#log.info({ pid: webots.pid, port }, "Webots started");
    this.deps.onChange();
    this.#startTimeLimit();
    void webots.status.then((status) => this.#onWebotsExit(status));
    await this.#followWebots(webots, port);
  }

  async #followWebots(webots: WebotsProcess, port: number) {
    const { startTimeout } = this.deps.config;
    const timeout = new AbortController();
    sleep(this.deps.clock, startTimeout * 1000, timeout.signal).then(() => {
      if (this.#state === "starting") {
        void this.#fail(
          new ClientError(`Webots did not get ready within ${startTimeout} s`),
          "start_timeout",
        );
      }
    }, () => {});
    try {
      for await (const line of webots.lines) {
        if (this.#isClosed()) break;
        const event = parseWebotsLine(line);
        switch (event.kind) {
          case "open":
            // R2022b on: Webots is ready on its first heartbeat, whatever it printed before.
            if (webots.readiness === "open") this.#ready(port);
            else this.#log.debug({ pid: webots.pid, line }, "webots output");
            break;
          case "activity":
            // R2022b on, the first "." is the ready signal; older Webots may print "." before
            // (or instead of) "open", which is taken as ready too, as before.
            if (this.#state === "starting") this.#ready(port);
            else this.#send(ACTIVITY);
            break;
          case "mode":
            if (this.#idle !== !event.running) {
              this.#idle = !event.running;
              if (this.#idle) this.#idleSince = this.deps.clock.now();
              this.#followIdleLimit();
              this.deps.onChange();
            }
            break;
          case "other":
            this.#log.debug({ pid: webots.pid, line: event.line }, "webots output");
            break;
          default: {
            const unreachable: never = event;
            throw new Error(`unhandled Webots line ${JSON.stringify(unreachable)}`);
          }
        }
      }
    } finally {
      timeout.abort();
    }
  }

  #ready(port: number) {
    if (this.#state !== "starting") return;
    this.#setState("running");
    if (this.#startStep !== undefined) {
      this.#startStep = undefined;
      this.#starts.ready((this.deps.clock.now() - this.#startBegan) / 1000);
    }
    const url = webotsStreamUrl(this.deps.config.fullyQualifiedDomainName ?? this.host, port, {
      ssl: this.deps.ssl,
      portRewrite: this.deps.config.portRewrite,
    });
    this.#log.info({ port, url }, "Webots ready");
    this.#send(formatWebotsUrl(url));
    this.#followIdleLimit();
  }

  /**
   * With `idleTimeout`, a simulation paused (or never set running) for that long once ready is
   * ended; a current client is warned with `shutdownTimeout:` half-way, at most 60 s before the
   * end. A `real-time`/`fast`/`step` line cancels the count; the next pause starts it afresh.
   */
  #followIdleLimit() {
    this.#idleLimit?.abort();
    this.#idleLimit = undefined;
    const seconds = this.deps.config.idleTimeout;
    if (!seconds || !this.#idle || this.#state !== "running") return;
    const limit = new AbortController();
    this.#idleLimit = limit;
    const lead = Math.min(60, seconds / 2);
    const left = seconds * 1000 - (this.deps.clock.now() - this.#idleSince);
    const signal = AbortSignal.any([limit.signal, this.#abort.signal]);
    sleep(this.deps.clock, Math.max(0, left - lead * 1000), signal)
      .then(() => {
        this.warnShutdown(lead);
        return sleep(this.deps.clock, lead * 1000, signal);
      })
      .then(() => {
        void this.end(
          "idle limit reached",
          `simulation paused for ${seconds} s: ended`,
          "idle_limit",
        );
      }, () => {});
  }

  /**
   * With `timeout`, the limit runs from the spawn, as the 2023 Cyberbotics server's `timeout <s>`
   * prefix does; like that server, `shutdownTimeout:` goes out right after the spawn, before
   * Webots is ready and `webots:` is sent.
   */
  #startTimeLimit() {
    const seconds = this.deps.config.timeout;
    if (seconds === undefined) return;
    if (this.#isCurrent()) this.#send(formatShutdownTimeout(seconds));
    sleep(this.deps.clock, seconds * 1000, this.#abort.signal).then(
      () => this.#timeUp(seconds),
      () => {},
    );
  }

  /**
   * The time limit is reached: ended like a departure. The R2021b client has no `error:` branch
   * (it would only log the line as unknown), so it just sees the socket close.
   */
  #timeUp(seconds: number) {
    if (this.#isClosed()) return;
    this.#log.info({ pid: this.#webots?.pid, timeout: seconds }, "time limit reached");
    if (this.#isCurrent()) this.#send(formatError(`time limit of ${seconds} s reached`));
    this.socket.close(1000, "time limit reached");
    void this.close("time limit reached");
  }

  #onWebotsExit(status: Deno.CommandStatus) {
    if (this.#isClosed()) return;
    const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
    this.#log.warn(
      { pid: this.#webots?.pid, code: status.code, signal: status.signal },
      "Webots exited",
    );
    this.#startFailed("webots_exited");
    this.#send(formatError(`Webots exited (${how})`));
    this.socket.close(1000, "Webots exited");
    void this.close("Webots exited");
  }

  async #resetController(path: string) {
    if (this.#project === undefined || this.#state === "closed") {
      throw new ClientError("no simulation to reset a controller of");
    }
    await this.deps.projects.resetController(this.#project, path);
    this.#log.info({ path }, "Reset controller");
    this.#send(formatResetController(path));
  }

  async #fail(error: unknown, reason?: StartFailureReason) {
    if (this.#isClosed()) return;
    this.#startFailed(reason ?? this.#failureReason(error));
    if (error instanceof UnavailableError) {
      this.#log.debug({ reason: error.message }, "simulation failed");
      this.#send(formatError(error.message));
    } else if (error instanceof ClientError) {
      this.#log.warn({ reason: error.message }, "simulation failed");
      this.#send(formatError(error.message));
    } else {
      this.#log.error({ err: error }, "simulation failed");
      this.#send(formatError("internal server error"));
    }
    this.socket.close(1011, "simulation failed");
    await this.close("failure");
  }

  /** Why a start failed with `error` in the step it is in. */
  #failureReason(error: unknown): StartFailureReason {
    if (!(error instanceof ClientError)) return "internal";
    if (error instanceof NoSlotError) return "no_slot";
    if (error instanceof UnavailableError) return "storage";
    switch (this.#startStep) {
      case "open":
        return "no_webots";
      case "project":
        return "project";
      case "release":
        return "release";
      default:
        return "internal";
    }
  }

  /** Records the failure of a start in progress; nothing once it is ready or settled. */
  #startFailed(reason: StartFailureReason) {
    if (this.#startStep === undefined) return;
    this.#startStep = undefined;
    this.#starts.failed(reason);
  }

  get #starts(): StartEvents {
    return this.deps.starts ?? IGNORED_START_EVENTS;
  }

  async #cleanUp(reason: string) {
    if (this.#startStep !== undefined) {
      this.#startStep = undefined;
      this.#starts.abandoned();
    }
    this.#setState("closed");
    // A leased slot not yet handed to a run goes back to the pool.
    this.slot?.release();
    this.#abort.abort(new Error(`session closed: ${reason}`));
    // A step in flight may still write into the run's folder: let it give up first.
    await this.#inFlight?.catch(() => {});
    try {
      await this.#run?.stop();
    } finally {
      this.#released = true;
    }
    this.#log.info({ reason }, "Client disconnected");
    this.deps.onChange();
  }

  #generationOf(message: Extract<ClientMessage, { kind: "init" | "start" }>): ClientGeneration {
    const configured = this.deps.config.clientProtocol as ClientProtocol;
    const generation = configured === "auto" ? clientGeneration(message) : configured;
    this.#log.debug({ generation, clientProtocol: configured }, "client generation");
    return generation;
  }

  /** True when the client understands `loading:` and `shutdownTimeout:`. */
  #isCurrent(): boolean {
    return this.#generation === "r2023";
  }

  /** `loading: <text>` for current clients; older ones get nothing. */
  #loading(text: string) {
    if (this.#isCurrent()) this.#send(formatLoading(text));
  }

  /** The preparation's progress callback: paced `loading:` lines, or none for older clients. */
  #progressReporter(): OnProgress | undefined {
    if (!this.#isCurrent()) return undefined;
    return throttleProgress(this.deps.clock, (progress) => {
      if (!this.#isClosed()) this.#loading(describeProgress(progress));
    });
  }

  /** True once `close()` began. */
  get closed(): boolean {
    return this.#isClosed();
  }

  #isClosed(): boolean {
    return this.#state === "closed";
  }

  #setState(state: SessionState) {
    if (this.#state === "closed") return;
    this.#state = state;
    this.deps.onChange();
  }

  #send(text: string) {
    try {
      this.socket.send(text);
    } catch {
      // The socket is closing; the close handler cleans up.
    }
  }
}
