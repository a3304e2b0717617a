/**
 * Progress of a simulation's set-up: the steps project preparation reports through a typed
 * callback (`OnProgress`), their wording for the browser's `loading:` messages, and a throttle so
 * that a fast download does not flood the socket.
 *
 * @module
 */
import type { Clock } from "../shared/clock.ts";

/** One step of project preparation. */
export type ProjectProgress =
  | {
    readonly step: "downloading";
    /** What is downloaded, e.g. `cyberbotics/webots@master`. */
    readonly source: string;
    readonly received: number;
    /** Total bytes when the server declared them. */
    readonly total: number | undefined;
  }
  | { readonly step: "unpacking" }
  | { readonly step: "copying" };

/** Receives the steps of project preparation as they happen. */
export type OnProgress = (progress: ProjectProgress) => void;

/** Whole percent of a download, or undefined when its size is unknown. */
export function percentOf(progress: Extract<ProjectProgress, { step: "downloading" }>) {
  if (progress.total === undefined || progress.total <= 0) return undefined;
  return Math.min(100, Math.floor(progress.received * 100 / progress.total));
}

/** The text of a step, e.g. `downloading cyberbotics/webots@master (35%)`. */
export function describeProgress(progress: ProjectProgress): string {
  switch (progress.step) {
    case "downloading": {
      const percent = percentOf(progress);
      return percent === undefined
        ? `downloading ${progress.source}`
        : `downloading ${progress.source} (${percent}%)`;
    }
    case "unpacking":
      return "unpacking";
    case "copying":
      return "copying project";
    default: {
      const unreachable: never = progress;
      throw new Error(`unhandled progress ${JSON.stringify(unreachable)}`);
    }
  }
}

/** The text sent when Webots is being started; the release is named when it is known. */
export function startingWebots(release?: string): string {
  return `starting Webots${release ? ` ${release}` : ""}`;
}

/** Least time between two download messages: at most 4 per second. */
export const PROGRESS_INTERVAL_MS = 250;

/**
 * Passes steps on to `report`, except download updates that would repeat the last whole percent
 * (or say nothing new when the size is unknown) or come sooner than `intervalMs` after the last
 * one; the download's first and 100 % updates always pass. Other steps always pass.
 */
export function throttleProgress(
  clock: Clock,
  report: OnProgress,
  intervalMs = PROGRESS_INTERVAL_MS,
): OnProgress {
  let last: { source: string; percent: number | undefined; at: number } | undefined;
  return (progress) => {
    if (progress.step !== "downloading") {
      last = undefined;
      report(progress);
      return;
    }
    const percent = percentOf(progress);
    const now = clock.now();
    if (last !== undefined && last.source === progress.source) {
      if (percent === last.percent) return;
      if (percent !== 100 && now - last.at < intervalMs) return;
    }
    last = { source: progress.source, percent, at: now };
    report(progress);
  };
}
