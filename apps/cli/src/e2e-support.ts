/**
 * Support for the distributed end-to-end tests: app processes (the API, queue workers) started as
 * a user or an orchestrator would, with their pino logs captured line by line; polling with
 * deadlines; corpus text and archives; and the fields on which two runs' results must agree.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { openAsBlob } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

/** The entry files of apps/api and apps/worker, the processes `kvfold serve` and `kvfold worker` are. */
export const APP_MAINS = {
  api: fileURLToPath(new URL('../../api/src/main.ts', import.meta.url)),
  worker: fileURLToPath(new URL('../../worker/src/main.ts', import.meta.url)),
} as const;

const run = promisify(execFile);

/** How often a condition is polled: often enough to catch a fold between checkpoints. */
export const POLL_MS = 50;
/** How often a batch's status is polled through the API: well inside its default rate limit (600 a minute). */
export const STATUS_POLL_MS = 250;

/** A free TCP port on loopback (closed again before it is returned). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  if (!address || typeof address !== 'object') throw new Error('no port assigned');
  return address.port;
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined/false, or fails after `timeoutMs` naming `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  context?: () => string,
  intervalMs = POLL_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${context ? `\n${context()}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** One pino line as parsed JSON (non-JSON lines are kept as `{ msg: line }`). */
export type LogLine = Record<string, unknown> & { msg?: string };

/** A child process with its output captured. */
export class AppProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #partial = '';

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
  ) {
    // Its own process group, so cleanup can end it and anything it spawned with one signal.
    this.child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child.stdout?.on('data', (d: Buffer) => this.#take(d.toString('utf8')));
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString('utf8');
    });
    this.exited = new Promise((done) => {
      // 'close', not 'exit': by then every line it wrote has been read.
      this.child.once('close', (code, signal) => done({ code, signal }));
      this.child.once('error', (err) => {
        this.stderr += `${err.message}\n`;
        done({ code: null, signal: null });
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} did not start`);
    return this.child.pid;
  }

  /** True once the process has exited (or was killed). */
  get gone(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Log lines whose message is `msg`, optionally about one document. */
  logged(msg: string | RegExp, docId?: string): LogLine[] {
    return this.lines.filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(JSON.stringify(l))) && (docId === undefined || l.docId === docId));
  }

  /** The last lines of its output, for failure messages. */
  tail(n = 15): string {
    const out = this.lines.slice(-n).map((l) => JSON.stringify(l));
    return `--- ${this.name} (pid ${this.child.pid}) ---\n${out.join('\n')}\n${this.stderr.slice(-2000)}`;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.gone) this.child.kill(signal);
  }

  /** Ends the process group whatever state it is in (a stopped process is continued first). */
  async destroy(): Promise<void> {
    if (this.child.pid === undefined) return;
    for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
      try {
        process.kill(-this.child.pid, signal);
      } catch {
        // already gone
      }
    }
    await this.exited;
  }

  #take(text: string): void {
    const parts = (this.#partial + text).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line.trim() === '') continue;
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.lines.push({ msg: line });
      }
    }
  }
}

/** Starts apps/api or apps/worker (`node --import tsx <main>`), the process `kvfold serve` and `kvfold worker` run. */
export function startApp(app: keyof typeof APP_MAINS, name: string, env: NodeJS.ProcessEnv): AppProcess {
  return new AppProcess(name, process.execPath, ['--import', 'tsx', APP_MAINS[app]], env);
}

/**
 * Deterministic prose of about `bytes` bytes (the tiny-llama tokenizer is byte-level: one token per
 * byte), distinct per `seed` so every document has its own content hash.
 */
export function prose(seed: number, bytes: number): string {
  const words = ['fold', 'cache', 'chunk', 'river', 'ledger', 'signal', 'harbor', 'quartz', 'meadow', 'lantern', 'orbit', 'cipher', 'willow', 'ember'];
  let state = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  let text = `Document ${seed}.\n`;
  let line = 0;
  while (text.length < bytes) {
    const n = 6 + (next() % 8);
    const sentence = Array.from({ length: n }, () => words[next() % words.length]).join(' ');
    text += `${++line}: ${sentence}.\n`;
  }
  return text.slice(0, bytes);
}

/** Writes `files` (relative path -> text) under `root`. */
export async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

/**
 * Writes a .tar.gz of `members` (paths relative to `from`) with GNU tar. `-P` keeps member names
 * verbatim, so a member `../x` is stored escaping the archive's root, as a hostile archive would.
 */
export async function makeTarGz(out: string, from: string, members: readonly string[]): Promise<void> {
  await run('tar', ['-czPf', out, '-C', from, ...members]);
}

/** Writes a .zip of `members` (paths relative to `from`) with the zip CLI. */
export async function makeZip(out: string, from: string, members: readonly string[]): Promise<void> {
  await run('zip', ['-q', '-X', out, ...members], { cwd: from });
}

/** The result fields two runs of the same document must agree on (timings differ). */
export function comparable(r: Record<string, unknown>): Record<string, unknown> {
  const { docId, paths, status, tokens, steps, answers, kvBytes, error } = r;
  return { docId, paths, status, tokens, steps, answers, kvBytes, ...(error !== undefined ? { error } : {}) };
}

/** Parses JSONL text into objects. */
export function parseJsonl(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The REST calls the tests make, with plain fetch and FormData, checking status codes. */
export class RestClient {
  constructor(
    readonly base: string,
    readonly key: string,
  ) {}

  /** multipart POST /v1/batches: the spec, then each file as a part named `name`. */
  async postBatch(files: ReadonlyArray<{ path: string; name: string }>, spec: object): Promise<Record<string, unknown>> {
    const form = new FormData();
    form.append('spec', JSON.stringify(spec));
    for (const f of files) form.append('file', await openAsBlob(f.path), f.name);
    const res = await fetch(`${this.base}/v1/batches`, { method: 'POST', headers: { 'x-api-key': this.key }, body: form });
    assert.equal(res.status, 202, await res.clone().text());
    return (await res.json()) as Record<string, unknown>;
  }

  async status(batchId: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.base}/v1/batches/${batchId}`, { headers: { 'x-api-key': this.key } });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as Record<string, unknown>;
  }

  /** Polls the status until `completed`; fails at once on `failed` or `cancelled`. */
  waitForBatch(batchId: string, timeoutMs: number, context?: () => string): Promise<Record<string, unknown>> {
    return waitFor(
      `batch ${batchId} to complete`,
      async () => {
        const status = await this.status(batchId);
        if (status.state === 'failed' || status.state === 'cancelled') assert.fail(`batch ${batchId} ended ${status.state}\n${context?.() ?? ''}`);
        return status.state === 'completed' && status;
      },
      timeoutMs,
      context,
      STATUS_POLL_MS,
    );
  }

  /** The finalized results.jsonl, by document id. */
  async results(batchId: string): Promise<Map<string, Record<string, unknown>>> {
    const res = await fetch(`${this.base}/v1/batches/${batchId}/results`, { headers: { 'x-api-key': this.key } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-kvfold-results'), 'final');
    return new Map(parseJsonl(await res.text()).map((r) => [r.docId as string, r]));
  }
}
