/**
 * Parsing and validation of `start` URLs, and the operator's allowed/blocked repository lists.
 *
 * Accepted forms (every segment is checked with the rules of `names.ts`):
 * - `webots://github.com/<user>/<repo>/{tag|branch}/<name>/<folder…>/worlds/<world>.wbt`
 *   (R2020b–R2021b); `<name>` is one segment, so a branch such as `feature/x` cannot be named.
 * - `https://github.com/<user>/<repo>/blob/<ref>/<folder…>/worlds/<world>.wbt` (R2022a+); `<ref>`
 *   is taken as one segment, since a ref containing `/` cannot be told apart from the folder.
 * - `file:///<path>/worlds/<world>.wbt`, taken literally (no %-decoding); `.`, `..` and empty
 *   segments are refused outright; the caller checks the location against `fileRoots`.
 *
 * @module
 */
import { ClientError } from "./client_error.ts";
import {
  checkWorldName,
  display,
  isGithubRepo,
  isGithubUser,
  isSafeSegment,
  quote,
} from "./names.ts";

/** A world in a GitHub repository. */
export interface GithubWorld {
  readonly kind: "github";
  readonly user: string;
  readonly repo: string;
  /** The ref as codeload.github.com takes it: `refs/tags/<x>`, `refs/heads/<x>` or `<x>`. */
  readonly ref: string;
  /** Folders from the repository root to the project (the parent of `worlds/`); may be empty. */
  readonly folder: readonly string[];
  readonly world: string;
  /** The same world as an `https://github.com/…/blob/…` URL, for the repository lists. */
  readonly normalized: string;
}

/** A world on this machine. */
export interface FileWorld {
  readonly kind: "file";
  /** Absolute path of the world file, as written in the URL. */
  readonly path: string;
  /** Absolute path of the project folder (the parent of `worlds/`). */
  readonly projectPath: string;
  readonly world: string;
}

/** A parsed `start` URL. */
export type StartWorld = GithubWorld | FileWorld;

const WEBOTS_PREFIX = "webots://github.com/";
const HTTPS_PREFIX = "https://github.com/";
const FILE_PREFIX = "file:///";

/** Parses a `start` URL, throwing a ClientError with the reference's message when it is wrong. */
export function parseStartUrl(url: string): StartWorld {
  if (url.startsWith(WEBOTS_PREFIX)) return parseGithub(url.slice(WEBOTS_PREFIX.length), "webots");
  if (url.startsWith(HTTPS_PREFIX)) return parseGithub(url.slice(HTTPS_PREFIX.length), "blob");
  if (url.startsWith(FILE_PREFIX)) return parseFile(url.slice("file://".length));
  throw new ClientError(`Unsupported url protocol: ${display(url)}`);
}

function parseGithub(rest: string, form: "webots" | "blob"): GithubWorld {
  const parts = rest.split("/");
  if (parts.length < 6) throw new ClientError("Wrong Webots URL");
  const world = parts[parts.length - 1]!;
  if (parts[parts.length - 2] !== "worlds") {
    throw new ClientError("Missing worlds folder in Webots URL");
  }
  if (!world.endsWith(".wbt")) {
    throw new ClientError(`Wrong Webots URL: missing world file in ${display(world)}`);
  }
  const [user, repo, kind, name] = parts as [string, string, string, string];
  if (form === "webots" && kind !== "tag" && kind !== "branch") {
    throw new ClientError(`Wrong tag/branch in Webots URL: ${display(kind)}`);
  }
  if (form === "blob" && kind !== "blob") {
    throw new ClientError(
      `Wrong Webots URL: expected "blob" after the repository, got ${quote(kind)}`,
    );
  }
  if (!isGithubUser(user)) throw new ClientError(`Wrong Webots URL: invalid user ${quote(user)}`);
  if (!isGithubRepo(repo)) {
    throw new ClientError(`Wrong Webots URL: invalid repository ${quote(repo)}`);
  }
  if (!isSafeSegment(name)) {
    throw new ClientError(`Wrong Webots URL: invalid tag or branch ${quote(name)}`);
  }
  const folder = parts.slice(4, -2);
  for (const segment of folder) {
    if (!isSafeSegment(segment)) {
      throw new ClientError(`Wrong Webots URL: invalid folder ${quote(segment)}`);
    }
  }
  checkWorldName(world);
  const ref = form === "blob" ? name : `refs/${kind === "tag" ? "tags" : "heads"}/${name}`;
  const normalized = `${HTTPS_PREFIX}${
    [user, repo, "blob", name, ...folder, "worlds", world].join("/")
  }`;
  return { kind: "github", user, repo, ref, folder, world, normalized };
}

function parseFile(path: string): FileWorld {
  const segments = path.split("/").slice(1);
  const bad = segments.find((s) => s === "" || s === "." || s === ".." || /[\\\0]/.test(s));
  if (bad !== undefined) {
    throw new ClientError(`Wrong Webots URL: invalid path segment ${quote(bad)}`);
  }
  const world = segments[segments.length - 1] ?? "";
  if (!world.endsWith(".wbt")) {
    throw new ClientError(`Wrong Webots URL: missing world file in ${display(world)}`);
  }
  if (segments.length < 3 || segments[segments.length - 2] !== "worlds") {
    throw new ClientError("Missing worlds folder in Webots URL");
  }
  checkWorldName(world);
  return { kind: "file", path, projectPath: `/${segments.slice(0, -2).join("/")}`, world };
}

/** The repository lists of the config. */
export interface RepositoryLists {
  readonly allowedRepositories: readonly string[];
  readonly blockedRepositories: readonly string[];
}

/**
 * Applies `allowedRepositories` (non-empty: some form of the URL must start with one of them) and
 * `blockedRepositories` (no form may start with any). The forms are the URL as given and, for
 * GitHub worlds, the equivalent `https://github.com/<user>/<repo>/blob/<ref>/…` URL, so a prefix
 * such as `https://github.com/cyberbotics/` covers `webots://` URLs too. GitHub forms compare
 * case-insensitively (GitHub's owner and repository names are); `file://` URLs compare exactly.
 * End prefixes with `/`: `https://github.com/cyberbotics/webots` also matches `…/webots-foo/`.
 */
export function checkRepositoryLists(url: string, world: StartWorld, lists: RepositoryLists): void {
  const github = world.kind === "github";
  const fold = (s: string) => (github ? s.toLowerCase() : s);
  const forms = github ? [url, world.normalized].map(fold) : [url];
  const matches = (prefix: string) => forms.some((form) => form.startsWith(fold(prefix)));
  if (lists.allowedRepositories.length > 0 && !lists.allowedRepositories.some(matches)) {
    throw new ClientError(`Repository not allowed on this server: ${display(url)}`);
  }
  if (lists.blockedRepositories.some(matches)) {
    throw new ClientError(`Repository blocked on this server: ${display(url)}`);
  }
}
