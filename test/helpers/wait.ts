/**
 * Waiting for an event the test can only observe by looking (a file appearing, a process state, an
 * HTTP answer): `probe` is asked every `everyMillis` until it gives a value other than undefined or
 * false. The deadline only turns a hang into a clear failure naming `what`; it is never a claim
 * about speed (the suite runs on 2 busy cores), so keep it generous.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMillis = 60_000,
  everyMillis = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMillis));
  }
}
