/**
 * Ingest benchmark (not a test): a generated codebase of N files (default 10,000) and M MB (default
 * 520) through the three ingest paths, each in its own process so its peak RSS is its own:
 *
 *     pnpm bench:ingest [--files 10000] [--mb 520] [--group file] [--out bench-results/ingest.json]
 *
 * 1. run: what `kvfold run` does before folding (ingest + uploadCorpus into a file:// store);
 * 2. enqueue: `kvfold enqueue <folder>` against a real API (apps/api on a free port, real Redis,
 *    file:// store): the CLI streams a tar it builds while walking, the API spools and ingests it;
 * 3. REST: a .tar.gz of the same tree POSTed as one multipart part to a fresh API.
 * Printed per path: MB/s (tree bytes / wall seconds), documents, peak RSS of the CLI (or run) and
 * of the API, and Redis bytes per document (MEMORY USAGE over the queue prefix's keys); for the
 * REST upload also the time to cancel that batch (every document still waiting) through the API.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ApiClient } from '@kvfold/api-client';
import { createRedis } from '@kvfold/jobs';

const MB = 1e6;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY = 'bench-key';

const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    mb: { type: 'string', default: '520' },
    group: { type: 'string', default: 'file' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const FILES = Number(args.files);
const BYTES = Number(args.mb) * MB;

/** A preload that records the process's peak RSS (KiB) under $KVFOLD_BENCH_RSS_DIR when it exits. */
const RSS_PRELOAD = `import { writeFileSync } from 'node:fs';
process.on('exit', () => { try { writeFileSync(process.env.KVFOLD_BENCH_RSS_DIR + '/' + process.pid, String(process.resourceUsage().maxRSS)); } catch {} });
`;

/** Deterministic source-like text: words from a small vocabulary, lines of ~60 characters. */
function sourceText(seed: number, bytes: number): string {
  const words = ['const', 'value', 'return', 'function', 'import', 'export', 'await', 'index', 'result', 'buffer', 'length', 'string', '=', '{', '}', '(', ')', ';'];
  let x = (Math.imul(seed, 2654435761) + 1) >>> 0;
  const out: string[] = [`// file ${seed}\n`];
  let size = out[0]?.length ?? 0;
  let line = '';
  while (size < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    line += `${words[x % words.length]} `;
    if (line.length > 60) {
      out.push(`${line}\n`);
      size += line.length + 1;
      line = '';
    }
  }
  return out.join('');
}

async function generateTree(root: string): Promise<void> {
  const perFile = Math.ceil(BYTES / FILES);
  for (let i = 0; i < FILES; i++) {
    const dir = join(root, `pkg${String(Math.floor(i / 500)).padStart(2, '0')}`, `mod${String(Math.floor(i / 50) % 10)}`);
    if (i % 50 === 0) await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `file${String(i).padStart(5, '0')}.ts`), sourceText(i, perFile));
  }
  // What a real repository also holds: ignored build output and dependencies, which must not be read.
  await writeFile(join(root, '.gitignore'), 'node_modules/\ndist/\n');
  await mkdir(join(root, 'node_modules', 'dep'), { recursive: true });
  await writeFile(join(root, 'node_modules', 'dep', 'index.js'), sourceText(-1, 1_000_000));
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

interface Proc {
  readonly pid: number;
  readonly exited: Promise<number>;
  readonly stdout: () => string;
  readonly stderr: () => string;
  kill(signal?: NodeJS.Signals): void;
}

function start(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number>((done) => child.once('exit', (code, signal) => done(code ?? (signal ? 128 : 1))));
  return { pid: child.pid as number, exited, stdout: () => out, stderr: () => err, kill: (s = 'SIGTERM') => child.kill(s) };
}

/** Peak RSS in MiB of every process that wrote into `rssDir` (a process and the children it spawned). */
async function peakMiB(rssDir: string): Promise<number> {
  let peak = 0;
  for (const name of await readdir(rssDir)) peak = Math.max(peak, Number(await readFile(join(rssDir, name), 'utf8')));
  return Math.round(peak / 1024);
}

async function withRssDir<T>(work: (env: Record<string, string>, dir: string) => Promise<T>, base: string, preload: string): Promise<T> {
  const dir = await mkdtemp(join(base, 'rss-'));
  return work({ KVFOLD_BENCH_RSS_DIR: dir, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim() }, dir);
}

interface Api {
  readonly url: string;
  readonly prefix: string;
  stop(): Promise<number>;
}

async function startApi(work: string, env: Record<string, string>): Promise<Api> {
  const port = await freePort();
  const prefix = `{bench-${randomUUID()}}`;
  const proc = start(['apps/api/src/main.ts'], {
    ...env,
    REDIS_URL,
    KVFOLD_QUEUE_PREFIX: prefix,
    KVFOLD_STORE: `file://${join(work, `store-${prefix.slice(7, 15)}`)}`,
    KVFOLD_API_KEYS: KEY,
    KVFOLD_API_PORT: String(port),
    KVFOLD_API_HOST: '127.0.0.1',
    KVFOLD_API_UPLOAD_LIMIT: String(4 * 1024 * MB),
    TMPDIR: work,
    KVFOLD_API_CHECK_MODEL: 'false',
    LOG_LEVEL: 'warn',
  });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
    if (await Promise.race([proc.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))])) {
      throw new Error(`the API exited before answering /healthz: ${proc.stderr()}`);
    }
  }
  return {
    url,
    prefix,
    stop: async () => {
      proc.kill('SIGTERM');
      return proc.exited;
    },
  };
}

/** Redis bytes held under `prefix` (MEMORY USAGE of every key), then the keys are dropped (unless `keep`). */
async function redisBytes(prefix: string, options: { keep?: boolean } = {}): Promise<number> {
  const redis = createRedis(REDIS_URL);
  try {
    let bytes = 0;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    for (const key of keys) bytes += Number((await redis.call('MEMORY', 'USAGE', key)) ?? 0);
    if (!options.keep) for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    return bytes;
  } finally {
    redis.disconnect();
  }
}

interface Row {
  readonly path: string;
  readonly seconds: number;
  readonly mbPerS: number;
  readonly documents: number;
  readonly clientPeakRssMiB: number | null;
  readonly apiPeakRssMiB: number | null;
  readonly redisBytesPerDocument: number | null;
  /** Cancelling the uploaded batch through the API (every document still waiting). */
  readonly cancel?: { readonly ms: number; readonly removed: number };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'kvfold-ingest-bench-'));
  const preload = join(work, 'rss-preload.mjs');
  await writeFile(preload, RSS_PRELOAD);
  const tree = join(work, 'repo');
  const rows: Row[] = [];
  try {
    process.stderr.write(`generating ${FILES} files, ${BYTES / MB} MB under ${tree}\n`);
    await generateTree(tree);
    const treeBytes = Number(execFileSync('du', ['-sb', '--exclude=node_modules', tree]).toString().split('\t')[0]);
    const tarGz = join(work, 'repo.tar.gz');
    execFileSync('tar', ['-czf', tarGz, '--exclude=node_modules', '-C', work, 'repo']);
    const model = 'file:///models/bench';

    // 1. run's ingest, in its own process.
    const script = join(work, 'run-ingest.mts');
    await writeFile(
      script,
      `import { ingest, uploadCorpus } from ${JSON.stringify(join(ROOT, 'packages/producer/src/index.ts'))};
import { FsObjectStore } from ${JSON.stringify(join(ROOT, 'packages/storage/src/index.ts'))};
const grouping = process.argv[4];
const up = await uploadCorpus(new FsObjectStore(process.argv[3]), ingest([process.argv[2]], { grouping }), { grouping });
process.stdout.write(JSON.stringify({ documents: up.documents, files: up.report?.files, ignored: up.report?.ignored }));
`,
    );
    rows.push(
      await withRssDir(async (env, dir) => {
        const t0 = performance.now();
        const p = start([script, tree, join(work, 'run-store'), args.group], env);
        if ((await p.exited) !== 0) throw new Error(`run's ingest failed: ${p.stderr()}`);
        const seconds = (performance.now() - t0) / 1000;
        const out = JSON.parse(p.stdout()) as { documents: number };
        return { path: 'run (ingest + uploadCorpus, file:// store)', seconds, mbPerS: treeBytes / MB / seconds, documents: out.documents, clientPeakRssMiB: await peakMiB(dir), apiPeakRssMiB: null, redisBytesPerDocument: null };
      }, work, preload),
    );

    // 2. kvfold enqueue <folder> against a real API.
    rows.push(
      await withRssDir(async (apiEnv, apiDir) => {
        const api = await startApi(work, apiEnv);
        return withRssDir(async (env, dir) => {
          const t0 = performance.now();
          const p = start(['apps/cli/src/main.ts', 'enqueue', tree, '--model', model, '--group', args.group, '--json', '--api', api.url], { ...env, KVFOLD_API_KEY: KEY });
          const code = await p.exited;
          const seconds = (performance.now() - t0) / 1000;
          if (code !== 0) throw new Error(`enqueue failed: ${p.stderr()}`);
          const created = JSON.parse(p.stdout()) as { documents: number };
          const redis = await redisBytes(api.prefix);
          await api.stop();
          return {
            path: 'enqueue <folder> (tar stream) -> API',
            seconds,
            mbPerS: treeBytes / MB / seconds,
            documents: created.documents,
            clientPeakRssMiB: await peakMiB(dir),
            apiPeakRssMiB: await peakMiB(apiDir),
            redisBytesPerDocument: Math.round(redis / created.documents),
          };
        }, work, preload);
      }, work, preload),
    );

    // 3. A .tar.gz POSTed to the REST API as one streamed part.
    rows.push(
      await withRssDir(async (apiEnv, apiDir) => {
        const api = await startApi(work, apiEnv);
        const client = new ApiClient({ baseUrl: api.url, apiKey: KEY });
        const t0 = performance.now();
        const created = await client.createBatchFromStreams(JSON.stringify({ model, grouping: args.group }), [{ name: 'repo.tar.gz', body: createReadStream(tarGz) }]);
        const seconds = (performance.now() - t0) / 1000;
        // Redis is measured before the cancel, which removes the waiting documents.
        const redis = await redisBytes(api.prefix, { keep: true });
        const c0 = performance.now();
        const cancelled = await client.cancel(created.id);
        const cancelMs = performance.now() - c0;
        await redisBytes(api.prefix);
        await api.stop();
        return {
          cancel: { ms: Math.round(cancelMs), removed: cancelled.removed },
          path: 'REST .tar.gz upload',
          seconds,
          mbPerS: treeBytes / MB / seconds,
          documents: created.documents,
          clientPeakRssMiB: null,
          apiPeakRssMiB: await peakMiB(apiDir),
          redisBytesPerDocument: Math.round(redis / created.documents),
        };
      }, work, preload),
    );

    const summary = { files: FILES, treeMB: Math.round(treeBytes / MB), tarGzMB: Math.round(Number(execFileSync('stat', ['-c', '%s', tarGz]).toString()) / MB), grouping: args.group, rows };
    for (const r of rows) {
      process.stdout.write(
        `${r.path}: ${r.seconds.toFixed(1)} s, ${r.mbPerS.toFixed(1)} MB/s, ${r.documents} documents, ` +
          `peak RSS client ${r.clientPeakRssMiB ?? '-'} MiB, API ${r.apiPeakRssMiB ?? '-'} MiB, Redis ${r.redisBytesPerDocument ?? '-'} B/document` +
          `${r.cancel ? `; cancel ${r.cancel.ms} ms (${r.cancel.removed} documents removed)` : ''}\n`,
      );
    }
    if (args.out) {
      await mkdir(dirname(resolve(args.out)), { recursive: true });
      await writeFile(resolve(args.out), `${JSON.stringify(summary, null, 1)}\n`);
    }
  } finally {
    if (!args.keep) await rm(work, { recursive: true, force: true });
  }
}

await main();
