import type { Logger } from "./core/contracts.js";

/** The CLI's logger: the core's Logger, the warnings said so far (for the report), and fatal errors. */
export interface StderrLogger extends Logger {
  warnings: string[];
  /**
   * A fatal error of the command (it could not be started: exit 126/127): `powerprint: error: ...`,
   * never a warning; kept with the warnings for the report, which says why it holds nothing.
   */
  error(message: string): void;
}

/**
 * powerprint's own messages: stderr only (the wrapped command owns stdout), each line prefixed
 * "powerprint:" so they are easy to tell from the job's output.
 */
export function createStderrLogger(opts: { verbose?: boolean; quiet?: boolean; write?: (line: string) => void } = {}): StderrLogger {
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
    error(message) {
      warnings.push(message);
      write(`powerprint: error: ${message}`);
    },
    debug(message) {
      if (opts.verbose) write(`powerprint: debug: ${message}`);
    },
  };
}
