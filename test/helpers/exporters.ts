/**
 * The exporters a command would create from these flags and this environment: the real config
 * builder (src/config/export.ts) and the real factory (exporters/index.ts), as `run` and `agent`
 * call them.
 */
import { createExporters, type ExportDeps } from "../../exporters/index.js";
import { exportConfig, type ExportFlags } from "../../src/config/export.js";
import type { Exporter } from "../../src/core/contracts.js";

export async function exportersFromFlags(flags: ExportFlags, deps: ExportDeps & { env: Readonly<Record<string, string | undefined>> }): Promise<Exporter[]> {
  const { env, ...rest } = deps;
  return createExporters(exportConfig(flags, env), rest);
}
