/**
 * How the CLI fails: one line naming the input and what to do, a non-zero exit, and a stack trace
 * only when KVFOLD_DEBUG is set.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Prints an error for a person and returns the exit code. */
export function reportError(err: unknown, debug: boolean): number {
  const e = err as { message?: string; code?: string; exitCode?: number; stack?: string };
  const code = typeof e.code === 'string' && e.code.startsWith('KVF_') ? ` [${e.code}]` : '';
  process.stderr.write(`kvfold: ${e.message ?? String(err)}${code}\n`);
  if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
  return typeof e.exitCode === 'number' ? e.exitCode : 1;
}
