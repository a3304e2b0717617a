/**
 * Webots release names (`R2019b` … `R2025a`): reading the installed one from
 * `<webotsHome>/resources/version.txt`, and the one a world was saved with from its
 * `#VRML_SIM <release> utf8` header.
 *
 * @module
 */
import { join } from "node:path";
import { ClientError } from "./client_error.ts";

/** The oldest and newest releases this server knows the command line of. */
export const OLDEST_RELEASE = "R2019b";
/** The newest release this server knows the command line of. */
export const NEWEST_RELEASE = "R2025a";

const RELEASE = /^R20\d\d[ab]$/;

/** True for a well-formed release name (`R20\d\d[ab]`) from R2019b to R2025a. */
export function isKnownRelease(name: string): boolean {
  return RELEASE.test(name) && name >= OLDEST_RELEASE && name <= NEWEST_RELEASE;
}

/** Orders release names (the fixed `R<year><a|b>` form sorts as text). */
export function compareReleases(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The release named by the first line of a `version.txt`: `R2022a`, also with a revision
 * (`R2023b revision 1`, `R2023b-rev1`); undefined when the line names none.
 */
export function parseVersionLine(text: string): string | undefined {
  const first = text.split(/\r?\n/, 1)[0]?.trim() ?? "";
  const match = /^(R\d{4}[ab])(?:(?:\s+|-)(?:revision\s*|rev)\d+)?$/i.exec(first);
  return match?.[1] === undefined ? undefined : `R${match[1].slice(1).toLowerCase()}`;
}

/** `<webotsHome>/resources/version.txt`. */
export function versionFile(webotsHome: string): string {
  return join(webotsHome, "resources", "version.txt");
}

/** The installed release, or why it cannot be known. */
export type InstalledRelease =
  | { readonly release: string }
  | { readonly problem: string };

/** Reads `<webotsHome>/resources/version.txt` (first 256 bytes) and checks the release. */
export async function readInstalledRelease(webotsHome: string): Promise<InstalledRelease> {
  const path = versionFile(webotsHome);
  let text: string;
  try {
    text = await readHead(path);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return { problem: `cannot read the Webots version from ${path}: ${why}` };
  }
  const release = parseVersionLine(text);
  if (release === undefined) {
    return { problem: `${path} names no Webots release: ${JSON.stringify(firstLine(text))}` };
  }
  if (!isKnownRelease(release)) {
    return {
      problem: `Webots ${release} (${path}) is not supported: ` +
        `this server knows ${OLDEST_RELEASE} to ${NEWEST_RELEASE}`,
    };
  }
  return { release };
}

/**
 * The release in a world file's header (`#VRML_SIM R2023b utf8`), read from its first 256 bytes.
 * Throws a ClientError naming the problem when the header is missing or malformed.
 */
export async function readWorldRelease(worldFile: string): Promise<string> {
  const line = firstLine(await readHead(worldFile));
  if (!line.startsWith("#VRML_SIM")) {
    throw new ClientError("the world file has no '#VRML_SIM <release> utf8' header");
  }
  const match = /^#VRML_SIM (R\d{4}[ab])(?:-rev\d+)? utf8\s*$/.exec(line);
  if (match?.[1] === undefined) {
    throw new ClientError(
      `malformed world header ${JSON.stringify(line.slice(0, 80))}: ` +
        "expected '#VRML_SIM <release> utf8'",
    );
  }
  return match[1];
}

function firstLine(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? "";
}

/** The first 256 bytes of a file, as text. */
async function readHead(path: string): Promise<string> {
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(256);
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return new TextDecoder().decode(buffer.subarray(0, filled));
}
