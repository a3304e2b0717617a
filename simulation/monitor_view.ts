/**
 * What `/monitor` and `/monitor/data` show for the current sessions: the sessions mapped to the
 * page's rows, with the host and the history of the metrics.
 *
 * @module
 */
import type { SessionInfo } from "./client_session.ts";
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

/**
 * The monitor's row for a session: running simulations show whether they are idle, and started
 * ones the Webots release they run on.
 */
function sessionRow(info: SessionInfo): SessionRow {
  return {
    id: info.id,
    // The release the world runs on goes with it (one column less to keep in step with the page).
    world: info.release === undefined ? info.world : `${info.world} (Webots ${info.release})`,
    port: info.port ?? 0,
    state: info.state === "running" ? (info.idle ? "idle" : "running") : info.state,
    startedAt: info.startedAt,
    remote: info.remote,
  };
}

/** The monitor's routes' content. */
export interface MonitorView {
  /** The HTML page. */
  page(sessions: readonly DescribesSession[]): string;
  /** The JSON of `/monitor/data`. */
  data(sessions: readonly DescribesSession[]): unknown;
}

/** Binds the monitor to the server's host name and metrics. */
export function createMonitorView(
  deps: { fqdn: string; metrics: Pick<Metrics, "hostInfo" | "history"> },
): MonitorView {
  const pageData = (sessions: readonly DescribesSession[]): MonitorPageData => ({
    fqdn: deps.fqdn,
    host: deps.metrics.hostInfo(),
    history: deps.metrics.history,
    sessions: sessions.map((session) => sessionRow(session.info())),
  });
  return {
    page: (sessions) => renderMonitorPage(pageData(sessions)),
    data: (sessions) => monitorData(pageData(sessions)),
  };
}
