/**
 * The small closed set of fatal errors. Expected outcomes are discriminated unions, not exceptions.
 * Each class keeps its `cause`.
 */

/** Bad input from the user (flag, config, scenario). The CLI prints the one-line message and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly exitCode = 2;
  constructor(
    /** The flag or field at fault, e.g. "--pue" or "devices[1].idleWatts". */
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${field}: ${message}`, options);
  }
}

/** A hardware source failed in a way its collector could not turn into a reading or a reason. */
export class CollectorError extends Error {
  override readonly name = "CollectorError";
  constructor(readonly collectorId: string, message: string, options?: { cause?: unknown }) {
    super(`${collectorId}: ${message}`, options);
  }
}

/** An exporter (OTLP, Prometheus, report) failed. */
export class ExportError extends Error {
  override readonly name = "ExportError";
  constructor(readonly exporterId: string, message: string, options?: { cause?: unknown }) {
    super(`${exporterId}: ${message}`, options);
  }
}

/** A grid-intensity provider failed (HTTP status, timeout, malformed body, auth). */
export class ProviderError extends Error {
  override readonly name = "ProviderError";
  constructor(
    readonly providerId: string,
    /** "auth" | "rate-limit" | "http" | "timeout" | "malformed" | "network" | "no-data" */
    readonly kind: string,
    message: string,
    options?: { cause?: unknown; retryAfterMillis?: number },
  ) {
    super(`${providerId}: ${message}`, options);
    this.retryAfterMillis = options?.retryAfterMillis;
  }
  readonly retryAfterMillis?: number;
}

/** Turns any thrown value into a one-line message. */
/** `text` on one line: its line breaks escaped (`\n`), as a parser's quote of a file may hold them. */
export function oneLine(text: string): string {
  return text.replace(/\r/g, "\\r").replace(/\n/g, "\\n");
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
