/**
 * How each Webots release family is started and read: its command line (as an argv array), the
 * stdout line that means "ready", what `.` lines mean, and which streaming options it has.
 *
 * The table, and where its facts come from (cyberbotics/webots and cyberbotics/webots-server):
 *
 * | family        | streaming options                                                       | ready on          |
 * | ------------- | ----------------------------------------------------------------------- | ----------------- |
 * | R2019b–R2021a | `--stream="port=P;monitorActivity[;mode=m][;controllerEdit]…[;ssl]"`   | a line `open`     |
 * | R2021b–R2022a | same, plus `--no-rendering` next to `--minimize`                        | a line `open`     |
 * | R2022b–R2025a | `--port=P --heartbeat=5000 --stream[=x3d\|mjpeg]`                       | first line `.`    |
 *
 * - R2019b–R2022a: src/webots/gui/WbGuiApplication.cpp (`parseStreamArguments`) strips one pair of
 *   quotes from the `--stream=` value and splits it on `;`; `monitorActivity` makes
 *   WbStreamingServer print `open` after each world load and `.` when the simulation steps. The
 *   R2021b simulation_server.py (reference §3.6) adds `controllerEdit`, `multimediaServer=`,
 *   `multimediaStream=` and `ssl`. `--no-rendering` is accepted from R2021b on (reference §3.6).
 * - R2022b: the streaming port moved to Webots' own TCP server option `--port` (also used by the
 *   remote extern controllers of changelog-r2022.md, PR #4518); `--stream` takes only the mode
 *   and `--heartbeat[=ms]` prints `.` on stdout at that period (docs/guide/starting-webots.md).
 *   `monitorActivity`, `controllerEdit`, `multimediaServer`/`multimediaStream` and `ssl` no
 *   longer exist as streaming options, so they are left out (TLS is the proxy's job there).
 *   The 2023–2025 webots-server simulation_server.py starts Webots as
 *   `--batch --mode=pause [--minimize --no-rendering] --port=P --heartbeat=5000 --stream[=mode]`
 *   and takes the first stdout line starting with `.` as ready (reference §6, §6.1).
 *
 * @module
 */

/** The stdout line that tells the server Webots is ready. */
export type Readiness = "open" | "dot";

/** What a command line is built from; nothing here comes unchecked from a client. */
export interface DialectLaunch {
  readonly worldFile: string;
  readonly port: number;
  /** The view mode the client sent (already parsed into this union). */
  readonly mode: "x3d" | "mjpeg" | undefined;
  readonly controllerEdit: boolean;
  readonly multimediaServer: string | undefined;
  readonly multimediaStream: string | undefined;
  readonly ssl: boolean;
}

/** One release family. */
export interface WebotsDialect {
  /** The family's name, e.g. `R2022b–R2025a`. */
  readonly family: string;
  /** `open`: ready on a line starting with `open`; `dot`: on the first line starting with `.`. */
  readonly readiness: Readiness;
  /** What `.` lines mean: simulation steps (`monitorActivity`) or a periodic heartbeat. */
  readonly activity: "monitorActivity" | "heartbeat";
  /** The optional streaming options this family has (the others are left out). */
  readonly options: readonly string[];
  /** Webots' arguments, without the binary. */
  args(launch: DialectLaunch): string[];
}

/** The heartbeat period the 2023–2025 Cyberbotics server asks for, in ms. */
export const HEARTBEAT_MS = 5000;

function streamOptionsArgs(launch: DialectLaunch, noRendering: boolean): string[] {
  const stream = [`port=${launch.port}`, "monitorActivity"];
  if (launch.mode !== undefined) stream.push(`mode=${launch.mode}`);
  if (launch.controllerEdit) stream.push("controllerEdit");
  if (launch.multimediaServer !== undefined) {
    stream.push(`multimediaServer=${streamValue("multimediaServer", launch.multimediaServer)}`);
  }
  if (launch.multimediaStream !== undefined) {
    stream.push(`multimediaStream=${streamValue("multimediaStream", launch.multimediaStream)}`);
  }
  if (launch.ssl) stream.push("ssl");
  // The quotes stay in the argument: Webots strips them itself (WbGuiApplication).
  return [
    ...windowArgs(launch, noRendering),
    `--stream="${stream.join(";")}"`,
    launch.worldFile,
  ];
}

/** `--batch --mode=pause`, and a minimized, non-rendering window unless MJPEG needs it. */
function windowArgs(launch: DialectLaunch, noRendering: boolean): string[] {
  const args = ["--batch", "--mode=pause"];
  // MJPEG streams what the window renders, so only then must Webots render visibly.
  if (launch.mode !== "mjpeg") {
    args.push("--minimize");
    if (noRendering) args.push("--no-rendering");
  }
  return args;
}

function streamValue(key: string, value: string): string {
  if (/[;"]/.test(value)) throw new Error(`${key} must not contain ';' or '"': ${value}`);
  return value;
}

const STREAM_OPTIONS = ["mode", "controllerEdit", "multimediaServer", "multimediaStream", "ssl"];

/** The table: each family from its first release on, oldest first. */
export const DIALECTS: readonly { readonly from: string; readonly dialect: WebotsDialect }[] = [
  {
    from: "R2019b",
    dialect: {
      family: "R2019b–R2021a",
      readiness: "open",
      activity: "monitorActivity",
      options: STREAM_OPTIONS,
      args: (launch) => streamOptionsArgs(launch, false),
    },
  },
  {
    from: "R2021b",
    dialect: {
      family: "R2021b–R2022a",
      readiness: "open",
      activity: "monitorActivity",
      options: STREAM_OPTIONS,
      args: (launch) => streamOptionsArgs(launch, true),
    },
  },
  {
    from: "R2022b",
    dialect: {
      family: "R2022b–R2025a",
      readiness: "dot",
      activity: "heartbeat",
      options: ["mode"],
      args: (launch) => [
        ...windowArgs(launch, true),
        `--port=${launch.port}`,
        `--heartbeat=${HEARTBEAT_MS}`,
        launch.mode === undefined ? "--stream" : `--stream=${launch.mode}`,
        launch.worldFile,
      ],
    },
  },
];

/** The dialect of a known release (see `isKnownRelease`). */
export function dialectFor(release: string): WebotsDialect {
  let found: WebotsDialect | undefined;
  for (const { from, dialect } of DIALECTS) if (release >= from) found = dialect;
  if (found === undefined) throw new Error(`no Webots dialect for ${release}`);
  return found;
}
