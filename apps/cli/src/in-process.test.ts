/**
 * `kvfold worker` and `kvfold serve` are the service themselves, not wrappers around a child: each
 * runs as a real process of the compiled binary (bin/kvfold.mjs, built first as `pnpm install`
 * builds it) on real Redis and a real filesystem store, and the process table is read (/proc) to
 * find every process that carries the run's unique marker in its environment (children inherit it,
 * even once re-parented to PID 1). The compiled binary, not the sources: under tsx, a module not in
 * tsx's cache yet is compiled by an esbuild service process, a child of its own.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { AppProcess, freePort, waitFor } from './e2e-support.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const CLI = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(CLI, 'bin', 'kvfold.mjs');
const START_TIMEOUT_MS = 60_000;

/** What a process is, for failure messages: its pid, parent and command line. */
async function describeProcesses(pids: readonly number[]): Promise<string> {
  const lines = await Promise.all(
    pids.map(async (pid) => {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => '')).split('\0').join(' ').trim();
      const ppid = (await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '')).split(') ')[1]?.split(' ')[1];
      return `pid ${pid} (parent ${ppid}): ${cmdline}`;
    }),
  );
  return lines.join('\n');
}

/** Pids of live processes whose environment holds `marker` (a process we may not read is not ours). */
async function processesWith(marker: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'latin1').catch(() => '');
    const stat = await readFile(`/proc/${entry}/stat`, 'latin1').catch(() => '');
    // A zombie (state Z, after ')') has exited; it is only waiting for its parent to reap it.
    if (environ.split('\0').includes(marker) && !/\) Z /.test(stat)) pids.push(Number(entry));
  }
  return pids.sort((a, b) => a - b);
}

describe('kvfold worker and kvfold serve run in the process the user starts', () => {
  let dir = '';
  const started: AppProcess[] = [];

  before(async () => {
    await promisify(execFile)(process.execPath, ['build.mjs'], { cwd: CLI });
    dir = await mkdtemp(join(tmpdir(), 'kvfold-in-process-'));
  });
  after(async () => {
    for (const p of started) await p.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts `kvfold <command>` with a marker of its own and waits for `readyMsg`. */
  async function start(command: string, readyMsg: string, env: NodeJS.ProcessEnv = {}): Promise<{ app: AppProcess; marker: string }> {
    const id = randomUUID();
    const marker = `KVFOLD_TEST_MARKER=${id}`;
    const app = new AppProcess(`kvfold ${command}`, process.execPath, [BIN, command], {
      ...process.env,
      REDIS_URL,
      KVFOLD_QUEUE_PREFIX: `{in-process-${id}}`,
      KVFOLD_STORE: pathToFileURL(join(dir, 'store')).href,
      KVFOLD_MODEL_CACHE: join(dir, 'models-cache'),
      KVFOLD_TEST_MARKER: id,
      ...env,
    });
    started.push(app);
    await waitFor(`${app.name} to be ready`, () => app.logged(readyMsg).length > 0 || app.gone, START_TIMEOUT_MS, () => app.tail());
    assert.ok(!app.gone, `${app.name} exited at start\n${app.tail()}`);
    return { app, marker };
  }

  const services = [
    { command: 'worker', ready: 'kvfold worker ready', env: async () => ({}) },
    { command: 'serve', ready: 'kvfold api listening', env: async () => ({ KVFOLD_API_PORT: String(await freePort()), KVFOLD_API_KEYS: 'test' }) },
  ];

  for (const { command, ready, env } of services) {
    test(`kvfold ${command} is one process: SIGKILL of it leaves no process behind`, async () => {
      const { app, marker } = await start(command, ready, await env());
      const running = await processesWith(marker);
      assert.deepEqual(running, [app.pid], `kvfold ${command} is the only process of its run (no wrapper child):\n${await describeProcesses(running)}`);
      app.signal('SIGKILL');
      assert.deepEqual(await app.exited, { code: null, signal: 'SIGKILL' });
      assert.deepEqual(await processesWith(marker), [], `no process of kvfold ${command} outlives it`);
    });

    test(`kvfold ${command} stops cleanly on SIGTERM with exit 0`, async () => {
      const { app } = await start(command, ready, await env());
      app.signal('SIGTERM');
      assert.deepEqual(await app.exited, { code: 0, signal: null }, app.tail());
      assert.ok(app.logged(command === 'worker' ? 'stopped' : 'stopping').length > 0, app.tail());
    });
  }
});
