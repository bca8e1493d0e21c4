/**
 * The metric exporters of a command, from its validated export config (exporters/index.ts makes
 * them), and the one rule for its listening endpoints (--prometheus, and the agent's --listen): an
 * address that cannot be bound (port taken, address not on this host) is runtime trouble, not bad
 * input — a warning, and measuring goes on without that endpoint; with --strict-endpoints it is
 * exit 2 (a deployment that would rather crash-loop than run unscraped). A malformed address is
 * always exit 2 (parsed before anything listens). Kept apart from the rest of the composition
 * root: `run` opens them before its spawn (a taken port is known before the command starts),
 * while the pipeline proper loads after it.
 */
import { createExporters, type ExportDeps } from "../../exporters/index.js";
import type { ExportConfig } from "../config/export.js";
import type { Exporter, Logger } from "../core/contracts.js";
import { UsageError } from "../errors.js";

/** Whether `err` says that the endpoint of `field` could not listen (as opposed to a bad address). */
export function isListenFailure(err: unknown, field: string): err is UsageError {
  return err instanceof UsageError && err.field === field && /cannot listen/.test(err.message);
}

/** The one warning of an endpoint that could not listen. */
export function warnEndpoint(log: Logger, err: UsageError, what: string): void {
  log.warn(`${err.message}: measuring on without ${what} (--strict-endpoints makes this exit 2)`);
}

/** Creates and starts the exporters the config asks for (a taken --prometheus port: see the module comment). */
export async function openExporters(config: ExportConfig, deps: ExportDeps): Promise<Exporter[]> {
  try {
    return await createExporters(config, deps);
  } catch (err) {
    if (config.strictEndpoints || !isListenFailure(err, "--prometheus")) throw err;
    warnEndpoint(deps.log, err, "the Prometheus endpoint");
    const selected = new Set(config.selected);
    selected.delete("prometheus");
    return createExporters({ ...config, selected, prometheus: undefined }, deps);
  }
}
