/**
 * What `/monitor` and `/monitor/data` show for the current sessions: the sessions mapped to the
 * page's rows, with what `/load` answers, the host and the history of the metrics.
 *
 * @module
 */
import type { SessionInfo } from "./client_session.ts";
import type { LoadStatus } from "./load.ts";
import type { Metrics } from "./metrics.ts";
import {
  monitorData,
  type MonitorPageData,
  renderMonitorPage,
  type SessionRow,
} from "./monitor_page.ts";

/** Something that describes itself as a monitor row (a `ClientSession`). */
export interface DescribesSession {
  info(): SessionInfo;
}

/** The monitor's row for a session: running simulations show whether they are idle. */
function sessionRow(info: SessionInfo): SessionRow {
  return {
    id: info.id,
    world: info.world,
    release: info.release,
    port: info.port ?? 0,
    state: info.state === "running" ? (info.idle ? "idle" : "running") : info.state,
    startedAt: info.startedAt,
    // Paused time counts only once Webots runs: before, the session is preparing or starting.
    idleSince: info.state === "running" ? info.idleSince : undefined,
    remote: info.remote,
  };
}

/** The monitor's routes' content. */
export interface MonitorView {
  /** The HTML page. */
  page(sessions: readonly DescribesSession[], status: LoadStatus): string;
  /** The JSON of `/monitor/data`. */
  data(sessions: readonly DescribesSession[], status: LoadStatus): unknown;
}

/** What the view reads. */
export interface MonitorViewDeps {
  readonly fqdn: string;
  readonly metrics: Pick<Metrics, "hostInfo" | "history" | "loadFigures">;
  /** Seconds `/load` averages CPU and GPU over (`loadWindow`). */
  readonly loadWindow: number;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
}

/** Binds the monitor to the server's host name and metrics. */
export function createMonitorView(deps: MonitorViewDeps): MonitorView {
  const pageData = (
    sessions: readonly DescribesSession[],
    status: LoadStatus,
  ): MonitorPageData => ({
    fqdn: deps.fqdn,
    host: deps.metrics.hostInfo(),
    history: deps.metrics.history,
    sessions: sessions.map((session) => sessionRow(session.info())),
    status,
    loadFigures: deps.metrics.loadFigures(),
    loadWindow: deps.loadWindow,
    now: deps.now(),
  });
  return {
    page: (sessions, status) => renderMonitorPage(pageData(sessions, status)),
    data: (sessions, status) => monitorData(pageData(sessions, status)),
  };
}
