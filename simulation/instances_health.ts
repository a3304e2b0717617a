/**
 * The instances folder's health as browsers meet it: when a run's record or folder cannot be
 * created there (disk full, file system read-only, permissions), the browser gets a clear
 * `error:` instead of "internal server error", and the log gets one error line when it starts
 * failing and one line when it works again, however many browsers are refused meanwhile.
 *
 * It wraps the run factory (`WebotsRuns.open`), which already releases everything a failed open
 * took (port, record, folder).
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import { ClientError, UnavailableError } from "./client_error.ts";
import type { WebotsRuns } from "./webots_run.ts";

/** The `error:` text a refused browser gets. */
export const INSTANCES_UNWRITABLE =
  "this server cannot store a simulation at the moment (its instances folder is not writable)";

/** `runs`, with failures to create a run's files turned into one clear error and one log line. */
export function guardInstances(
  runs: WebotsRuns,
  instancesDir: string,
  logger: Logger,
): WebotsRuns {
  let failing = false;
  return {
    async open(log, heldPort) {
      let run;
      try {
        run = await runs.open(log, heldPort);
      } catch (error) {
        // Not installed, no slot left: the browser's answer already says it.
        if (error instanceof ClientError) throw error;
        if (!failing) {
          failing = true;
          const reason = error instanceof Error ? error.message : String(error);
          logger.error(
            { instancesDir, err: reason },
            `Cannot create simulation folders in ${instancesDir}: ${reason}; ` +
              "new simulations are refused until it works again",
          );
        }
        throw new UnavailableError(INSTANCES_UNWRITABLE, { cause: error });
      }
      if (failing) {
        failing = false;
        logger.info({ instancesDir }, "Simulation folders can be created again");
      }
      return run;
    },
  };
}
