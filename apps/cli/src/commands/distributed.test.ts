/**
 * `kvfold enqueue | status | results | cancel | retry | batches recover | serve` as a user runs them: real processes against
 * a real API that `kvfold serve` starts on a free port, over real Redis and a filesystem store.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BatchRegistry, createQueues, createRedis, redisOptionsFromUrl } from '@kvfold/jobs';
import { DocumentResult, documentResultKey } from '@kvfold/contract';
import { dropTestQueues } from '@kvfold/jobs/testing';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { ingest, uploadCorpus } from '@kvfold/producer';
import { FsObjectStore } from '@kvfold/storage';
import { freePort } from '../e2e-support.ts';
import { kvfold as run, startKvfold } from '../test-support.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY = 'cli-test-key';

const kvfold = (args: string[], env: Record<string, string> = {}) => run(args, { env });

describe('kvfold distributed commands (real API, Redis and store)', () => {
  let dir = '';
  let server: ChildProcess;
  let api = '';
  let batchId = '';
  let modelUri = '';
  const prefix = `{test-${randomUUID()}}`;
  const redis = createRedis(REDIS_URL, { lazyConnect: true });
  const registry = new BatchRegistry(redis, { prefix });
  const client = (...args: string[]) => kvfold([...args, '--api', api], { KVFOLD_API_KEY: KEY });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kvfold-cli-dist-'));
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    server = startKvfold(['serve', '--port', String(port), '--host', '127.0.0.1'], {
      env: { REDIS_URL, KVFOLD_QUEUE_PREFIX: prefix, KVFOLD_STORE: `file://${join(dir, 'store')}`, KVFOLD_API_KEYS: KEY, LOG_LEVEL: 'warn' },
    }).child;
    for (let i = 0; ; i++) {
      const up = await fetch(`${api}/healthz`).then((r) => r.ok, () => false);
      if (up) break;
      assert.ok(i < 200, 'the API did not come up within 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    await writeModelFolder(tinyLlamaSpec(), join(dir, 'models', 'tiny'));
    modelUri = `file://${join(dir, 'models', 'tiny')}`;
    await mkdir(join(dir, 'corpus', 'docs'), { recursive: true });
    await writeFile(join(dir, 'corpus', 'docs', 'a.txt'), 'first document\n');
    await writeFile(join(dir, 'corpus', 'docs', 'b.txt'), 'second document\n');
    await writeFile(join(dir, 'corpus', 'single.md'), '# third document\n');
  });

  after(async () => {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await dropTestQueues(createQueues(redisOptionsFromUrl(REDIS_URL), prefix), redis);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  it('enqueue uploads a folder and a file and prints the batch id; again prints the same id', async () => {
    const r = await client('enqueue', join(dir, 'corpus', 'docs'), join(dir, 'corpus', 'single.md'), '--model', modelUri, '--ask', 'What is here?', '--chunk-size', '64');
    assert.equal(r.code, 0, r.stderr);
    batchId = r.stdout.trim();
    assert.match(batchId, /^b[0-9a-f]{32}$/);
    assert.match(r.stderr, /3 documents, queued/);
    const again = await client('enqueue', join(dir, 'corpus', 'docs'), join(dir, 'corpus', 'single.md'), '--model', modelUri, '--ask', 'What is here?', '--chunk-size', '64', '--json');
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { id: batchId, state: 'queued', documents: 3, added: 0, report: { skipped: [], refused: [], summary: [] } });
    assert.deepEqual((await registry.get(batchId))?.record.spec.queries, ['What is here?']);
  });

  it('enqueue refuses a model folder that is not there, naming it, and enqueues nothing', async () => {
    const before = await registry.list({ limit: 100 });
    const missing = join(dir, 'models', 'not-built');
    const r = await client('enqueue', join(dir, 'corpus', 'single.md'), '--model', missing);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^kvfold: model ${missing} folder ${missing} does not exist here.*nothing was enqueued \\[KVF_ENQUEUE_MODEL\\]\n$`));
    assert.deepEqual((await registry.list({ limit: 100 })).ids, before.ids);
  });

  it('status prints a plain line off a terminal, and JSON with --json', async () => {
    const plain = await client('status', batchId);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, `${batchId} queued 0/3 documents (0 completed, 0 failed, 0 cancelled, 0 active, 3 waiting) 0/12 tokens 0.0%\n`);
    const json = await client('status', batchId, '--json');
    assert.deepEqual(JSON.parse(json.stdout).counts, { total: 3, waiting: 3, active: 0, completed: 0, failed: 0, cancelled: 0 });
  });

  it('batches lists the newest first, a page at a time, or every page with --all', async () => {
    const other = await client('enqueue', join(dir, 'corpus', 'single.md'), '--model', modelUri);
    assert.equal(other.code, 0, other.stderr);
    const newest = other.stdout.trim();
    const page = await client('batches', '--limit', '1');
    assert.equal(page.code, 0, page.stderr);
    assert.match(page.stdout, new RegExp(`^${newest} queued 0/1 documents [^\n]*\n$`));
    const more = /^kvfold: more batches: kvfold batches --cursor (\S+) \(or --all\)\n$/.exec(page.stderr);
    assert.ok(more, page.stderr);
    const next = await client('batches', '--limit', '1', '--cursor', more[1] as string);
    assert.match(next.stdout, new RegExp(`^${batchId} queued 0/3 documents`));
    const all = await client('batches', '--limit', '1', '--all', '--json');
    assert.equal(all.code, 0, all.stderr);
    const pages = all.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { batches: { id: string }[]; nextCursor: string | null });
    assert.deepEqual(pages.map((p) => p.batches.map((b) => b.id)), [[newest], [batchId]]);
    assert.equal(pages.at(-1)?.nextCursor, null);
    await client('cancel', newest);
  });

  it('results writes the JSONL written so far, to stdout or --out', async () => {
    const empty = await client('results', batchId);
    assert.deepEqual([empty.code, empty.stdout], [0, '']);
    const docId = 'f'.repeat(64);
    const result = DocumentResult.parse({
      batchId,
      docId,
      paths: ['docs/a.txt'],
      status: 'completed',
      tokens: 16,
      steps: 1,
      chunkSize: 64,
      timings: { loadMs: 1, foldMs: 1, generateMs: 1, totalMs: 3, tokensPerSecond: 16000 },
      kvBytes: 64,
      answers: [],
      resumedFromStep: 0,
      checkpoint: { segments: 0, bytes: 0 },
      attempts: 1,
    });
    await new FsObjectStore(join(dir, 'store')).put(documentResultKey(batchId, docId), new Uint8Array(Buffer.from(JSON.stringify(result))));
    const out = join(dir, 'results.jsonl');
    const r = await client('results', batchId, '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), result);
  });

  it('cancel removes the waiting documents; status --watch then ends with exit 1 as cancelled', async () => {
    const r = await client('cancel', batchId);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${batchId} cancelled (3 waiting documents removed)\n`);
    const watch = await client('status', batchId, '--watch', '--interval', '50');
    assert.equal(watch.code, 1);
    assert.match(watch.stdout, new RegExp(`^${batchId} cancelled 3/3 documents \\(0 completed, 0 failed, 3 cancelled`));
    assert.equal(watch.stderr, `kvfold: batch ${batchId} ended cancelled\n`);
  });

  it('retry resumes the cancelled batch (its 3 documents enqueued again), refuses while it runs; batches recover finds nothing lost', async () => {
    const r = await client('retry', batchId);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${batchId} queued (3 documents enqueued again)\n`);
    const status = await client('status', batchId, '--json');
    assert.deepEqual(JSON.parse(status.stdout).counts, { total: 3, waiting: 3, active: 0, completed: 0, failed: 0, cancelled: 0 });
    const again = await client('retry', batchId);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`^kvfold: batch ${batchId} is queued; retry it once it has ended \\(or cancel it first\\) \\[KVF_API_CONFLICT\\]\n$`));
    const recover = await client('batches', 'recover', '--json');
    assert.equal(recover.code, 0, recover.stderr);
    assert.deepEqual(JSON.parse(recover.stdout), { rebuilt: 0, requeued: [] });
  });

  it('fails with one line and a non-zero exit: unknown batch, wrong key, unreachable API, missing corpus', async () => {
    const unknown = await client('status', `b${'0'.repeat(32)}`);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, `kvfold: no batch b${'0'.repeat(32)} [KVF_API_NOT_FOUND]\n`);

    const wrong = await kvfold(['status', batchId, '--api', api, '--api-key', 'wrong']);
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr, 'kvfold: API key not accepted (it is not one of KVFOLD_API_KEYS) (pass --api-key or set KVFOLD_API_KEY) [KVF_API_UNAUTHORIZED]\n');

    const closed = `http://127.0.0.1:${await freePort()}`;
    const down = await kvfold(['cancel', batchId], { KVFOLD_API_URL: closed, KVFOLD_API_KEY: KEY });
    assert.equal(down.code, 1);
    assert.equal(down.stderr.split('\n').length, 2, 'one line');
    assert.match(down.stderr, new RegExp(`^kvfold: the KV-Fold API at ${closed} is not reachable \\(ECONNREFUSED\\); start it with \`kvfold serve\` or pass --api \\[KVF_API_UNREACHABLE\\]`));

    const missing = await client('enqueue', join(dir, 'nope'), '--model', 'm');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^kvfold: corpus .*nope does not exist/);
  });

  it('enqueue sends only what `kvfold run` reads from a folder: .gitignore, .git/, symlinks and binaries left out, one line per reason', async () => {
    const repo = join(dir, 'repo');
    await mkdir(join(repo, 'node_modules', 'dep'), { recursive: true });
    await mkdir(join(repo, 'src'), { recursive: true });
    await mkdir(join(repo, '.git'), { recursive: true });
    await writeFile(join(repo, '.gitignore'), 'node_modules/\n*.log\n');
    await writeFile(join(repo, 'node_modules', 'dep', 'index.js'), 'module.exports = 1;\n');
    await writeFile(join(repo, 'debug.log'), 'noise\n');
    await writeFile(join(repo, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    await writeFile(join(repo, 'src', 'a.ts'), 'export const a = 1;\n');
    await writeFile(join(repo, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    await writeFile(join(repo, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0x0d, 0, 1]));
    await symlink(join(repo, 'src', 'a.ts'), join(repo, 'link.ts'));
    const r = await client('enqueue', repo, '--model', modelUri, '--group', 'directory');
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(r.stderr, /^kvfold: skipped 1 entry \(symlink \(not followed\)\): .*repo: repo\/link\.ts$/m);
    assert.match(r.stderr, /^kvfold: skipped 1 entry \(binary file\): .*repo: repo\/logo\.png$/m);
    const queues = createQueues(redisOptionsFromUrl(REDIS_URL), prefix);
    const jobs = await queues.documents.getJobs(['prioritized', 'waiting']).finally(() => queues.close());
    const paths = jobs.filter((j) => j.data.batchId === id).map((j) => j.data.paths);
    assert.deepEqual(paths.sort(), [['repo/.gitignore', 'repo/latin1.txt'], ['repo/src/a.ts']]);
    // The corpus is the one `kvfold run` ingests from the folder itself.
    const local = await uploadCorpus(new FsObjectStore(join(dir, 'local-store')), ingest([repo], { grouping: 'directory' }), { grouping: 'directory' });
    assert.deepEqual((await registry.get(id))?.record.corpusIds, [local.corpusId]);
    await client('cancel', id);
  });
});
