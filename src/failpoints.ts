/**
 * Crash injection for the crash-consistency tests: with CISTERN_FAILPOINTS=name[,name...] set, the
 * process SIGKILLs itself when it reaches a named point, which no external timing can hit reliably.
 * Unset (always, in production) each call is a single Set lookup.
 */
const armed = new Set((process.env.CISTERN_FAILPOINTS ?? '').split(',').filter(Boolean));

export function failpoint(name: string): void {
  if (armed.size > 0 && armed.has(name)) process.kill(process.pid, 'SIGKILL');
}
