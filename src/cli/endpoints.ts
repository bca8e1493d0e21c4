/**
 * One rule for the listening endpoints of `run` and `agent` (--prometheus, and the agent's
 * --listen): an address that cannot be bound (port taken, address not on this host) is runtime
 * trouble, not bad input: a warning, and measuring goes on without that endpoint. With
 * --strict-endpoints it is exit 2 instead (a deployment that would rather crash-loop than run
 * unscraped). A malformed address is always exit 2 (parsed before anything listens).
 */
import type { Command } from "commander";
import type { Exporter, Logger } from "../core/contracts.js";
import { createExporters, type ExportOptions } from "../../exporters/index.js";
import { UsageError } from "../errors.js";

/** Declares --strict-endpoints (run and agent). */
export function addStrictEndpointsOption(cmd: Command): Command {
  return cmd.option("--strict-endpoints", "exit 2 when --prometheus (or agent --listen) cannot listen (port taken); default: warn and measure on without it");
}

/** Whether `err` says that the endpoint of `field` could not listen (as opposed to a bad address). */
export function isListenFailure(err: unknown, field: string): err is UsageError {
  return err instanceof UsageError && err.field === field && /cannot listen/.test(err.message);
}

/**
 * The exporters; a --prometheus address that cannot be bound is warned about and the others are
 * made as asked, unless `strict` (then the UsageError stands: exit 2).
 */
export async function createExportersFailOpen(opts: ExportOptions, deps: Parameters<typeof createExporters>[1], strict: boolean): Promise<Exporter[]> {
  try {
    return await createExporters(opts, deps);
  } catch (err) {
    if (strict || !isListenFailure(err, "--prometheus")) throw err;
    warnEndpoint(deps.log, err, "the Prometheus endpoint");
    return createExporters({ ...opts, prometheus: undefined }, deps);
  }
}

/** The one warning of a failed endpoint. */
export function warnEndpoint(log: Logger, err: UsageError, what: string): void {
  log.warn(`${err.message}: measuring on without ${what} (--strict-endpoints makes this exit 2)`);
}
