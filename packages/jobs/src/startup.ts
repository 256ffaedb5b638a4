/** How an app's entry ends a start that cannot succeed: one line naming the cause, exit status 1. */

/** Prints `<app>: <message> [CODE]` on stderr and exits 1 (a bad environment, Redis or the store unreachable). */
export function exitWithStartError(app: string, err: unknown): never {
  const { message, code } = err as { message?: string; code?: unknown };
  process.stderr.write(`${app}: ${message ?? String(err)}${typeof code === 'string' ? ` [${code}]` : ''}\n`);
  process.exit(1);
}
