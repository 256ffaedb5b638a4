/**
 * Benchmarks measure each configuration in a fresh process, so its peak RSS is its own: this runs
 * the same CLI (compiled or from sources, as this process runs) with other arguments and reads the
 * JSON line it prints last.
 */
import { spawn } from 'node:child_process';
import { CliError } from '../cli-error.ts';

/** Runs `kvfold <args>` in a fresh process (its stderr shown) and parses the last line of its stdout; `what` names it in errors. */
export function kvfoldChild<T>(args: readonly string[], what: string): Promise<T> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.on('error', fail);
    p.on('close', (code, signal) => {
      if (code !== 0) fail(new CliError(`${what} exited with ${signal ?? `code ${code}`}`));
      else done(JSON.parse(stdout.trim().split('\n').at(-1) as string) as T);
    });
  });
}
