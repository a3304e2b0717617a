/**
 * The files the session server's pages load from `/assets/`: the shared chart assets plus the
 * home page's and the monitor page's scripts.
 *
 * @module
 */
import { type AssetSource, chartAssets, fileAsset } from "../shared/assets.ts";

/** Every asset the session server serves. */
export function sessionAssets(): AssetSource[] {
  return [
    ...chartAssets(),
    fileAsset("session_home.js", "./web/home.js", import.meta.url),
    fileAsset("session_monitor.js", "./web/monitor.js", import.meta.url),
  ];
}
