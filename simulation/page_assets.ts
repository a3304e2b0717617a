/**
 * The files the simulation server's monitor page loads from `/assets/`: the shared chart assets
 * plus the page's own script.
 *
 * @module
 */
import { type AssetSource, chartAssets, fileAsset } from "../shared/assets.ts";

/** Every asset the simulation server serves. */
export function simulationAssets(): AssetSource[] {
  return [
    ...chartAssets(),
    fileAsset("simulation_monitor.js", "./web/monitor.js", import.meta.url),
  ];
}
