/** Runs `kvfold` as a real process, as a user would, for the CLI's tests. */
import { type ChildProcess, spawn } from 'node:child_process';

const MAIN = new URL('./main.ts', import.meta.url).pathname;
/** tsx's loader by its resolved URL, so a process started in any folder finds it. */
const TSX = import.meta.resolve('tsx');

export interface RunResult {
  readonly code: number;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts `kvfold <args>`; `done` resolves when it exits. */
export function startKvfold(args: readonly string[], options: { stdin?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): { child: ChildProcess; done: Promise<RunResult> } {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: { ...process.env, ...options.env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d;
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d;
  });
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout, stderr }));
  });
  child.stdin?.end(options.stdin ?? '');
  return { child, done };
}

export function kvfold(args: readonly string[], options: { stdin?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return startKvfold(args, options).done;
}
