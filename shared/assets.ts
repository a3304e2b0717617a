/**
 * The static files the servers' pages load from `/assets/<name>`: uPlot's script and stylesheet
 * (from the `uplot` npm package), the shared live chart, and each server's own page scripts, which
 * the server names itself. They are read once at startup, so a missing file stops the server with
 * a clear message instead of a page without charts, and nothing is fetched from a CDN.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type HttpRequest, isGetOrHead, methodNotAllowed, notFound } from "./http.ts";

/** A file to serve as `/assets/<name>`. */
export interface AssetSource {
  readonly name: string;
  /** A `file:` URL. */
  readonly url: string;
}

/** Thrown when an asset cannot be read at startup. */
export class AssetError extends Error {
  override name = "AssetError";
}

/** The loaded assets. */
export interface Assets {
  /** Answers `GET|HEAD /assets/<name>` (404 for unknown names); undefined for other paths. */
  respond(request: HttpRequest): Response | undefined;
  /** The names served. */
  readonly names: readonly string[];
}

/** The path prefix of every asset. */
export const ASSETS_PREFIX = "/assets/";

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

/** An asset read from a file next to `base` (an `import.meta.url`). */
export function fileAsset(name: string, relative: string, base: string): AssetSource {
  return { name, url: new URL(relative, base).href };
}

/**
 * The chart assets every monitor page uses: uPlot's script and stylesheet (from the `uplot` npm
 * package) and `live_chart.js`. A server adds its own page scripts to these.
 */
export function chartAssets(): AssetSource[] {
  const uplot = (file: string) => ({ name: file, url: import.meta.resolve(`uplot/dist/${file}`) });
  return [
    uplot("uPlot.iife.min.js"),
    uplot("uPlot.min.css"),
    fileAsset("live_chart.js", "./web/live_chart.js", import.meta.url),
  ];
}

interface Loaded {
  readonly body: Uint8Array<ArrayBuffer>;
  readonly type: string;
  readonly etag: string;
}

/** Reads every source into memory; throws `AssetError` naming the file that is missing. */
export async function loadAssets(sources: readonly AssetSource[]): Promise<Assets> {
  const files = new Map<string, Loaded>();
  for (const source of sources) {
    const path = source.url.startsWith("file:") ? fileURLToPath(source.url) : source.url;
    let body: Uint8Array<ArrayBuffer>;
    try {
      body = await Deno.readFile(path);
    } catch (error) {
      const hint = path.includes("node_modules")
        ? " (are the npm packages installed? run `deno install`)"
        : "";
      throw new AssetError(
        `Cannot read the page asset ${source.name} at ${path}${hint}: ${error}`,
        {
          cause: error,
        },
      );
    }
    const extension = source.name.slice(source.name.lastIndexOf(".") + 1);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
    const etag = `"${
      Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("")
    }"`;
    files.set(source.name, {
      body,
      type: TYPES[extension] ?? "application/octet-stream",
      etag,
    });
  }
  return {
    names: [...files.keys()],
    respond(request) {
      const { pathname } = new URL(request.url);
      if (!pathname.startsWith(ASSETS_PREFIX)) return undefined;
      if (!isGetOrHead(request)) return methodNotAllowed("GET, HEAD");
      const file = files.get(pathname.slice(ASSETS_PREFIX.length));
      if (!file) return notFound();
      // Revalidated on each load: cheap (304) and never stale after an upgrade.
      const headers = { "content-type": file.type, etag: file.etag, "cache-control": "no-cache" };
      if (request.headers.get("if-none-match") === file.etag) {
        return new Response(null, { status: 304, headers });
      }
      return new Response(request.method === "HEAD" ? null : file.body, { headers });
    },
  };
}
