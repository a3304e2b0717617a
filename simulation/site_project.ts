/**
 * The `init` flow's download of a user's project from the website that embeds the simulation:
 * the site key, the POST to `<host>/ajax/download-project.php` and the ZIP it answers with.
 *
 * @module
 */
import { join } from "node:path";
import type { InitFields } from "../shared/protocol.ts";
import type { Logger } from "../shared/log.ts";
import { ClientError } from "./client_error.ts";
import { download, DownloadError } from "./download.ts";
import { isLoopbackHost, type SiteHost } from "./names.ts";
import { extractZip, ZipError } from "./zip.ts";

/** What a site download needs. */
export interface SiteDeps {
  readonly fetch: typeof fetch;
  readonly logger: Logger;
  readonly downloadTimeout: number;
  readonly maxDownloadSize: number;
}

/**
 * Reads the first line of `<keyDir>/<bare host>`; undefined when there is no such file. Throws a
 * ClientError `Unknown host: <host>` when the file exists but cannot be read.
 */
export async function readSiteKey(keyDir: string, site: SiteHost): Promise<string | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(keyDir, site.bareHost));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new ClientError(`Unknown host: ${site.bareHost}`, { cause: error });
  }
  return text.split("\n")[0]!.replace(/\r$/, "");
}

/** Refuses to send a site key over plain http, except to loopback (used by tests). */
export function checkKeyTransport(site: SiteHost): void {
  if (site.scheme !== "https" && !isLoopbackHost(site.bareHost)) {
    throw new ClientError(`Refusing to send the site key to ${site.raw}: https is required`);
  }
}

const NO_SUCH_DIRECTORY = "Error: no such directory: ";

/** Whether a file unpacked from a site ZIP gets mode 0o775: `*.py` and extension-less files. */
export function isSiteExecutable(path: string): boolean {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return name.endsWith(".py") || !name.slice(1).includes(".");
}

/**
 * POSTs the user's identity and the site key, then unpacks the answered ZIP over `projectDir`.
 * Returns false when the site has no saved project (`Error: no such directory: `), keeping the
 * default copy; any other `Error:` answer, HTTP error, bad or unsafe ZIP is a ClientError.
 */
export async function downloadSiteProject(
  site: SiteHost,
  key: string,
  init: InitFields,
  projectDir: string,
  deps: SiteDeps,
  signal?: AbortSignal,
): Promise<boolean> {
  const url = `${site.origin}/ajax/download-project.php`;
  const form = new URLSearchParams({
    project: init.app,
    key,
    user1Id: init.user1Id,
    user1Name: init.user1Name,
    user1Authentication: init.user1Authentication,
    user2Id: init.user2Id,
    user2Name: init.user2Name,
    customData: init.customData,
  });
  let status: number;
  let body: Uint8Array;
  try {
    // No redirects: a 307 would resend the key, possibly to plain http or another host.
    ({ status, body } = await download(url, { method: "POST", body: form, redirect: "manual" }, {
      fetch: deps.fetch,
      timeoutSeconds: deps.downloadTimeout,
      maxBytes: deps.maxDownloadSize,
      signal,
    }));
  } catch (error) {
    if (error instanceof DownloadError) {
      throw new ClientError(`Failed to download project: ${error.message}`, { cause: error });
    }
    throw error;
  }
  if (status < 200 || status > 299) {
    throw new ClientError(`Failed to download project: HTTP ${status}`);
  }
  const head = new TextDecoder().decode(body.subarray(0, 6));
  if (head === "Error:") {
    const text = new TextDecoder().decode(body.subarray(0, 1000)).trim();
    if (text.startsWith(NO_SUCH_DIRECTORY)) {
      deps.logger.info({ host: site.raw, app: init.app }, "no saved project, using the default");
      return false;
    }
    deps.logger.warn({ host: site.raw, app: init.app, body: text }, "Failed to download project");
    throw new ClientError(`Failed to download project: ${text}`);
  }
  try {
    const result = await extractZip(body, projectDir, {
      maxSize: deps.maxDownloadSize,
      symlinks: "refuse",
      executable: isSiteExecutable,
      signal,
    });
    deps.logger.info({ host: site.raw, app: init.app, ...result }, "project downloaded");
  } catch (error) {
    if (error instanceof ZipError) {
      throw new ClientError(`Failed to download project: ${error.message}`, { cause: error });
    }
    throw error;
  }
  return true;
}
