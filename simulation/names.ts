/**
 * Validation of every name a client supplies: project paths, world file names, `reset controller`
 * paths, site hosts and GitHub names. Each check throws a ClientError naming what was wrong.
 *
 * The rule for one path segment is deliberately narrow: it starts with a letter, a digit or `_`
 * (so never `.`, `..`, a hidden name or an option-like `-x`) and holds only letters, digits and
 * `._+-`. That excludes separators, backslashes, NUL, `%`-escapes, spaces and quotes, so a valid
 * name can be joined to a trusted folder and passed to Webots as one argument unchanged.
 *
 * @module
 */
import { ClientError } from "./client_error.ts";

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;
const MAX_SEGMENT = 255;
const MAX_PATH = 1024;

/** Shows untrusted text in a message: quoted, escaped, and cut to a readable length. */
export function quote(text: string): string {
  const cut = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return JSON.stringify(cut);
}

/** Shows untrusted text as is when it is short printable ASCII, else like `quote`. */
export function display(text: string): string {
  return text.length <= 200 && /^[\x20-\x7e]*$/.test(text) ? text : quote(text);
}

/** Whether `name` is one safe path segment (see the module doc). */
export function isSafeSegment(name: string): boolean {
  return name.length <= MAX_SEGMENT && SEGMENT.test(name);
}

/**
 * Checks a relative path of safe segments joined by `/` (no leading or trailing `/`, no empty
 * segment) and returns its segments. `what` names the value in the error message.
 */
export function checkRelativePath(path: string, what: string): string[] {
  if (path === "" || path.length > MAX_PATH) {
    throw new ClientError(`Invalid ${what}: ${quote(path)}`);
  }
  const segments = path.split("/");
  if (!segments.every(isSafeSegment)) {
    throw new ClientError(`Invalid ${what}: ${quote(path)}`);
  }
  return segments;
}

/** Checks a bare world file name such as `ure.wbt`. */
export function checkWorldName(name: string): string {
  if (!isSafeSegment(name) || !name.endsWith(".wbt") || name === ".wbt") {
    throw new ClientError(`Invalid world file name: ${quote(name)}`);
  }
  return name;
}

/** Checks a `reset controller` value: exactly `<controller folder>/<file>`. */
export function checkResetPath(path: string): [string, string] {
  const segments = path.split("/");
  if (segments.length !== 2 || path.length > MAX_PATH || !segments.every(isSafeSegment)) {
    throw new ClientError(`Invalid controller file: ${quote(path)}`);
  }
  return [segments[0]!, segments[1]!];
}

/** The site an `init` message names in its host field. */
export interface SiteHost {
  /** The field as received; written to `host.txt`. */
  readonly raw: string;
  readonly scheme: "http" | "https";
  /** Host name without scheme and port: names the key file in `keyDir`. */
  readonly bareHost: string;
  /** `<scheme>://<host>[:<port>]`, the base of the download URL. */
  readonly origin: string;
}

const HOST_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const HOST_NAME = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

/**
 * Parses the `init` host field, e.g. `https://robotbenchmark.net`: an `http://` or `https://`
 * origin with an optional port and nothing after it but an optional `/`.
 */
export function parseSiteHost(raw: string): SiteHost {
  const match = /^(https?):\/\/([^/]*)\/?$/.exec(raw);
  if (!match) throw new ClientError(`Invalid host: ${quote(raw)}`);
  const scheme = match[1] as "http" | "https";
  const authority = match[2]!;
  const colon = authority.indexOf(":");
  const bareHost = colon < 0 ? authority : authority.slice(0, colon);
  const port = colon < 0 ? undefined : authority.slice(colon + 1);
  if (
    bareHost.length > 253 || !HOST_NAME.test(bareHost) ||
    (port !== undefined && (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535))
  ) {
    throw new ClientError(`Invalid host: ${quote(raw)}`);
  }
  return { raw, scheme, bareHost, origin: `${scheme}://${authority}` };
}

/** Whether a bare host is the loopback interface (plain http is then allowed for downloads). */
export function isLoopbackHost(bareHost: string): boolean {
  return bareHost === "127.0.0.1" || bareHost === "localhost";
}

const GITHUB_USER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const GITHUB_REPO = /^[A-Za-z0-9._-]{1,100}$/;

/** Whether `name` is a valid GitHub user or organisation name. */
export function isGithubUser(name: string): boolean {
  return GITHUB_USER.test(name);
}

/** Whether `name` is a valid GitHub repository name (`.` and `..` excluded). */
export function isGithubRepo(name: string): boolean {
  return GITHUB_REPO.test(name) && name !== "." && name !== "..";
}
