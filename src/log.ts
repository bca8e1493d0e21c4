import type { Logger } from "./core/contracts.js";

/**
 * powerprint's own messages: stderr only (the wrapped command owns stdout), each line prefixed
 * "powerprint:" so they are easy to tell from the job's output.
 */
export function createStderrLogger(opts: { verbose?: boolean; quiet?: boolean; write?: (line: string) => void } = {}): Logger & { warnings: string[] } {
  const write = opts.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const once = new Set<string>();
  const warnings: string[] = [];
  return {
    warnings,
    info(message) {
      if (!opts.quiet) write(`powerprint: ${message}`);
    },
    warn(message) {
      warnings.push(message);
      write(`powerprint: warning: ${message}`);
    },
    warnOnce(key, message) {
      if (once.has(key)) return;
      once.add(key);
      warnings.push(message);
      write(`powerprint: warning: ${message}`);
    },
    debug(message) {
      if (opts.verbose) write(`powerprint: debug: ${message}`);
    },
  };
}
