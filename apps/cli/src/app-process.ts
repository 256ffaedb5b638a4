/**
 * Runs one of the repository's apps (apps/api, apps/worker) in a child process under the same
 * Node and tsx, forwarding SIGINT/SIGTERM, until it exits. Apps never import each other; the CLI
 * starts them as processes.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CliError } from './cli-error.ts';

export const APP_MAINS = {
  api: fileURLToPath(new URL('../../api/src/main.ts', import.meta.url)),
  worker: fileURLToPath(new URL('../../worker/src/main.ts', import.meta.url)),
} as const;

export async function runApp(app: keyof typeof APP_MAINS, env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), APP_MAINS[app]], { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((done, fail) => {
    child.on('error', fail);
    child.on('exit', (exitCode, signal) => done(exitCode ?? (signal ? 0 : 1)));
  });
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  if (code !== 0) throw new CliError(`the ${app} exited with code ${code} (its log above says why)`, code);
}
