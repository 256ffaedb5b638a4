/**
 * The distributed system end to end, on real parts: Redis (REDIS_URL), an S3-protocol server on
 * loopback (s3rver), the REST API started with `kvfold serve`, and queue workers as separate
 * processes folding with tiny-llama. Workers run as `node --import tsx apps/worker/src/main.ts`,
 * which runs the same function `kvfold worker` runs in its own process (in-process.test.ts), so
 * SIGKILL and SIGSTOP reach the worker itself.
 *
 * What it proves: one corpus (a folder, a .tar.gz and a .zip) enqueued through REST and again
 * through the CLI is one batch; a worker killed mid-fold loses nothing (its job is recovered as
 * stalled and resumes from its checkpoint elsewhere) and no document is folded to completion twice;
 * a worker paused past its lock is fenced off its document's checkpoint; SIGTERM hands a job back
 * with its checkpoint and without consuming an attempt; bad input fails alone; every folded result
 * equals what `kvfold run` gives for the same documents; a worker started with Redis down says so;
 * a worker and the API started on a private redis-server carry on after it restarts.
 *
 * Set KVFOLD_E2E_LOG_DIR to keep every process's output. Needs Redis, GNU tar and the zip CLI.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadCheckpoint, readManifest } from '@kvfold/checkpoint';
import { HostKvCache } from '@kvfold/fold-core';
import { createQueues, createRedis, foldProgressOf, redisOptionsFromUrl } from '@kvfold/jobs';
import { documentJobId, documentResultKey } from '@kvfold/contract';
import { type TestS3Server, startTestS3Server, TEST_S3_CREDENTIALS } from '@kvfold/storage/testing';
import { AppProcess, RestClient, comparable, freePort, makeTarGz, makeZip, parseJsonl, prose, startApp, waitFor, writeTree } from './e2e-support.ts';
import { kvfold, startKvfold } from './test-support.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY = 'e2e-key';
const MAIN = new URL('./main.ts', import.meta.url).pathname;
/** A folder to keep every process's full output in (to read after a failure on CI). */
const LOG_DIR = process.env.KVFOLD_E2E_LOG_DIR;

/** Tokens per fold step: with a byte-level tokenizer a 6 KB document takes ~190 steps, seconds on a loaded core. */
const CHUNK_SIZE = 32;
/** Steps between checkpoints (the default, stated so REST, CLI and `kvfold run` agree). */
const CHECKPOINT_EVERY = 8;
/** A short answer keeps generation cheap; answers are compared token for token. */
const MAX_NEW_TOKENS = 8;
const QUESTION = 'Which word comes up most?';
/** A fault is injected once a fold is past its third checkpoint step (that upload may still be in flight). */
const FAULT_AFTER_STEP = 3 * CHECKPOINT_EVERY + 2;
/** Worker lock: short, so a dead or paused worker's job is taken over in seconds; renewed every half of it. */
const LOCK_MS = 4000;
/** How often live workers look for expired locks. */
const STALLED_INTERVAL_MS = 1000;
/** SIGTERM grace: the worker must be gone well before this (one step and one commit). */
const GRACE_MS = 15_000;
/** Longest wait for a batch to finish once its fault is injected. */
const BATCH_TIMEOUT_MS = 120_000;
/** Longest wait for a process to start (tsx compile, model load) or for a fold to reach a step. */
const START_TIMEOUT_MS = 60_000;
/** Starts of a worker before giving up, for s3rver's spurious HEAD bucket failures (see startWorker). */
const WORKER_START_ATTEMPTS = 3;
/** A worker with Redis down must give up at once (its check times out after a few seconds). */
const REDIS_DOWN_EXIT_MS = 20_000;
/** The limit of the bad-input batch: the long document is over it, the short ones under. */
const TOKEN_LIMIT = 2000;

/** The documents, by input. Sizes are bytes (= tokens - 1, the tokenizer is byte-level). */
const MAIN_DIR = { 'docs/alpha.txt': prose(1, 7000), 'docs/notes/beta.md': prose(2, 5000) };
const MAIN_TAR = { 'gamma.log': prose(3, 6000) };
const MAIN_ZIP = { 'delta.txt': prose(4, 4000), 'sub/epsilon.txt': prose(5, 4500) };
const TERM_DIR = { 'term/zeta.txt': prose(6, 7000) };
const STOP_DIR = { 'stop/eta.txt': prose(7, 8000) };
const STALL_DIR = { 'stall/theta.txt': prose(8, 9000) };
/**
 * Over the limit two ways: `too-long.txt` is proven so from its text at upload (tiny-llama's
 * vocabulary is its bytes) and refused before it is enqueued; `at-limit.txt` has as many bytes as
 * the limit allows tokens, so only the tokenizer's count (with BOS) puts it over, in a worker.
 */
const LIMIT_DIR = {
  'limits/short-1.txt': prose(8, 600),
  'limits/short-2.txt': prose(9, 800),
  'limits/at-limit.txt': prose(10, TOKEN_LIMIT),
  'limits/too-long.txt': prose(11, 3000),
};

type Result = Record<string, unknown>;

describe('the distributed system on real parts (Redis, S3 protocol, API and worker processes)', () => {
  const prefix = `{e2e-${randomUUID()}}`;
  const redis = createRedis(REDIS_URL, { lazyConnect: true });
  const queues = createQueues(redisOptionsFromUrl(REDIS_URL), prefix);
  const processes: AppProcess[] = [];
  const workers: AppProcess[] = [];
  let dir = '';
  let model = '';
  let s3: TestS3Server;
  let api = '';
  let sharedEnv: NodeJS.ProcessEnv = {};
  let workerEnv: NodeJS.ProcessEnv = {};
  let expected: Promise<Map<string, Result>>;
  let reference: ReturnType<typeof startKvfold> | undefined;
  /** The main batch (a folder, a .tar.gz, a .zip) posted through REST, once, for every test that folds it. */
  let posted: Promise<string> | undefined;
  const mainBatch = () => {
    posted ??= (async () => {
      const io = inputs();
      const files = [...namedFiles(MAIN_DIR), { path: io.tar, name: 'logs.tar.gz' }, { path: io.zip, name: 'bundle.zip' }];
      const created = await rest(api).postBatch(files, spec());
      assert.equal(created.documents, 5);
      assert.equal(created.added, 6); // five documents and the batch's parent job
      const refused = (created.report as { refused: Array<{ input: string; entry: string; code: string }> }).refused;
      assert.deepEqual(
        refused.map((r) => [r.input, r.entry, r.code]),
        [['logs.tar.gz', '../escape.txt', 'KVF_INGEST_ESCAPING_ENTRY']],
      );
      return created.id as string;
    })();
    return posted;
  };
  const spec = () => ({ model, queries: [QUESTION], chunkSize: CHUNK_SIZE, checkpointEvery: CHECKPOINT_EVERY, maxNewTokens: MAX_NEW_TOKENS });
  const inputs = () => ({
    docs: join(dir, 'docs'),
    tar: join(dir, 'logs.tar.gz'),
    zip: join(dir, 'bundle.zip'),
    term: join(dir, 'term'),
    stop: join(dir, 'stop'),
    stall: join(dir, 'stall'),
    limits: join(dir, 'limits'),
  });
  const logs = () => processes.map((p) => p.tail()).join('\n');
  const rest = (base: string) => new RestClient(base, KEY);
  /** Files of a tree under `dir`, each named by its relative path, as `kvfold enqueue` names a folder's files. */
  const namedFiles = (tree: Record<string, string>) => Object.keys(tree).map((name) => ({ path: join(dir, name), name }));

  /**
   * Starts a queue worker and waits until it takes jobs. s3rver answers HEAD bucket (the worker's
   * start-up store check) by walking the bucket's folder, and answers 500 when a fold deletes an
   * object mid-walk; a worker that stops on that is started again (real S3 does not list there).
   */
  async function startWorker(): Promise<AppProcess> {
    for (let attempt = 1; ; attempt++) {
      const w = startApp('worker', `worker-${workers.length + 1}`, workerEnv);
      processes.push(w);
      workers.push(w);
      await waitFor(`${w.name} to be ready`, () => w.logged('kvfold worker ready').length > 0 || w.gone, START_TIMEOUT_MS, logs);
      if (!w.gone) return w;
      await w.exited;
      assert.ok(attempt < WORKER_START_ATTEMPTS && /checking the bucket .* \[KVF_STORE_IO\]/.test(w.stderr), `${w.name} exited at start\n${w.tail()}`);
    }
  }

  /** Starts workers until `n` are alive. */
  async function ensureWorkers(n: number): Promise<void> {
    const missing = n - workers.filter((w) => !w.gone).length;
    await Promise.all(Array.from({ length: Math.max(0, missing) }, () => startWorker()));
  }

  /** Starts the API with `kvfold serve` on a free port and waits until it answers; returns its base URL. */
  async function startApi(name: string, env: NodeJS.ProcessEnv): Promise<string> {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const server = new AppProcess(name, process.execPath, ['--import', 'tsx', MAIN, 'serve', '--port', String(port), '--host', '127.0.0.1'], env);
    processes.push(server);
    await waitFor(`${name} to answer /healthz`, async () => !server.gone && (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)), START_TIMEOUT_MS, logs);
    return base;
  }

  /** An active document of `batchId` at or past `step`, and the worker process folding it. */
  async function foldPast(batchId: string, step: number) {
    for (const job of await queues.documents.getActive()) {
      const progress = foldProgressOf(job.progress);
      if (job.data.batchId !== batchId || !progress || progress.step < step) continue;
      const worker = workers.find((w) => !w.gone && job.processedBy?.endsWith(`:${w.pid}`));
      if (worker) return { job, worker, docId: job.data.docId as string, step: progress.step };
    }
    return undefined;
  }

  /** Exactly one 'document folded' line per document, over every worker's log. */
  function assertFoldedOnce(docIds: Iterable<string>): void {
    for (const docId of docIds) {
      const by = workers.filter((w) => w.logged('document folded', docId).length > 0).map((w) => `${w.name} x${w.logged('document folded', docId).length}`);
      const total = workers.reduce((n, w) => n + w.logged('document folded', docId).length, 0);
      assert.equal(total, 1, `document ${docId} folded to completion ${total} times (${by.join(', ')})`);
    }
  }

  async function assertMatchesLocalRun(results: Map<string, Result>, docIds: Iterable<string>): Promise<void> {
    const local = await expected;
    for (const docId of docIds) {
      const got = results.get(docId);
      const want = local.get(docId);
      assert.ok(got && want, `document ${docId} has a result in both runs`);
      assert.deepEqual(comparable(got), comparable(want), `document ${docId} (${String(got.paths)})`);
    }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kvfold-e2e-'));
    model = join(dir, 'model');
    const built = await kvfold(['models', 'build', 'tiny-llama', '--out', model]);
    assert.equal(built.code, 0, built.stderr);

    await writeTree(dir, { ...MAIN_DIR, ...TERM_DIR, ...STOP_DIR, ...STALL_DIR, ...LIMIT_DIR });
    // The .tar.gz holds its document and one entry, `../escape.txt`, that escapes the archive's root.
    await writeTree(join(dir, 'tar-src', 'in'), MAIN_TAR);
    await writeTree(join(dir, 'tar-src'), { 'escape.txt': 'this entry escapes the archive root\n' });
    await writeTree(join(dir, 'zip-src'), MAIN_ZIP);
    await makeTarGz(inputs().tar, join(dir, 'tar-src', 'in'), [...Object.keys(MAIN_TAR), '../escape.txt']);
    await makeZip(inputs().zip, join(dir, 'zip-src'), Object.keys(MAIN_ZIP));

    // What `kvfold run` gives for every document (one thread, as the workers use): the reference.
    const io = inputs();
    const out = join(dir, 'expected.jsonl');
    reference = startKvfold(
      ['run', io.docs, io.tar, io.zip, io.term, io.stop, io.stall, io.limits, '--model', model, '--ask', QUESTION, '--chunk-size', String(CHUNK_SIZE), '--checkpoint-every', String(CHECKPOINT_EVERY), '--max-new-tokens', String(MAX_NEW_TOKENS), '--threads', '1', '--store', `file://${join(dir, 'local-store')}`, '--out', out, '--json'],
      { env: { LOG_LEVEL: 'warn' } },
    );
    expected = reference.done.then(async (r) => {
      assert.equal(r.code, 0, r.stderr);
      return new Map(parseJsonl(await readFile(out, 'utf8')).map((x) => [x.docId as string, x]));
    });
    expected.catch(() => {}); // awaited by the tests; a failure surfaces there

    s3 = await startTestS3Server();
    sharedEnv = {
      ...process.env,
      REDIS_URL,
      KVFOLD_QUEUE_PREFIX: prefix,
      KVFOLD_STORE: s3.uri('e2e'),
      KVFOLD_S3_ENDPOINT: s3.endpoint,
      KVFOLD_S3_FORCE_PATH_STYLE: 'true',
      KVFOLD_S3_CONDITIONAL_WRITES: String(s3.settings.conditionalWrites),
      AWS_ACCESS_KEY_ID: TEST_S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_S3_CREDENTIALS.secretAccessKey,
      KVFOLD_API_KEYS: KEY,
      LOG_LEVEL: 'info',
    };
    workerEnv = {
      ...sharedEnv,
      KVFOLD_MODEL_CACHE: join(dir, 'models-cache'),
      KVFOLD_THREADS: '1',
      KVFOLD_WORKER_CONCURRENCY: '1',
      KVFOLD_LOCK_DURATION_MS: String(LOCK_MS),
      KVFOLD_STALLED_INTERVAL_MS: String(STALLED_INTERVAL_MS),
      KVFOLD_STOP_GRACE_MS: String(GRACE_MS),
    };
    api = await startApi('api', sharedEnv);
  });

  after(async () => {
    reference?.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.destroy()));
    if (LOG_DIR) for (const p of processes) await writeFile(join(LOG_DIR, `${p.name}-${p.child.pid}.log`), p.tail(Number.POSITIVE_INFINITY));
    await queues.documents.obliterate({ force: true }).catch(() => {});
    await queues.batches.obliterate({ force: true }).catch(() => {});
    await queues.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await s3?.stop();
    await expected?.catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a worker started while Redis is down exits non-zero at once, naming the URL', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const w = startApp('worker', 'worker-no-redis', { ...workerEnv, REDIS_URL: url });
    processes.push(w);
    // "At once": the poll's deadline is the bar.
    await waitFor('the worker to exit', () => w.gone, REDIS_DOWN_EXIT_MS, () => w.tail());
    const { code } = await w.exited;
    assert.notEqual(code, 0);
    assert.match(w.stderr, new RegExp(`^kvfold worker: Redis at ${url} is not reachable: .*; start Redis or set REDIS_URL \\[KVF_REDIS_UNREACHABLE\\]$`, 'm'));
  });

  it('one corpus (a folder, a .tar.gz, a .zip) enqueued through REST and again through the CLI is one batch; the escaping entry is refused', async () => {
    const io = inputs();
    const batchId = await mainBatch();
    const again = await kvfold(
      ['enqueue', io.docs, io.tar, io.zip, '--model', model, '--ask', QUESTION, '--chunk-size', String(CHUNK_SIZE), '--checkpoint-every', String(CHECKPOINT_EVERY), '--max-new-tokens', String(MAX_NEW_TOKENS), '--json'],
      { env: { KVFOLD_API_URL: api, KVFOLD_API_KEY: KEY } },
    );
    assert.equal(again.code, 0, again.stderr);
    const second = JSON.parse(again.stdout);
    assert.equal(second.id, batchId);
    assert.equal(second.added, 0);
    assert.equal(second.documents, 5);
    // No worker runs yet: the five jobs of the first enqueue wait, and nothing else came.
    const jobs = await queues.documents.getJobs(['prioritized', 'waiting', 'active', 'completed', 'failed']);
    assert.deepEqual(
      jobs.map((j) => j.data.batchId),
      Array(5).fill(batchId),
    );
  });

  it('SIGKILL mid-fold: the stalled job resumes from its checkpoint on another worker, no document is folded twice, results equal `kvfold run`', async () => {
    const main = await mainBatch();
    await ensureWorkers(2);
    const target = await waitFor(`a document of ${main} past step ${FAULT_AFTER_STEP}`, () => foldPast(main, FAULT_AFTER_STEP), START_TIMEOUT_MS, logs);
    // Stopped first, so the step it reached can be read: a worker reports a step before it
    // commits it, so no checkpoint is past the progress it last reported.
    target.worker.signal('SIGSTOP');
    const reached = foldProgressOf((await queues.documents.getJob(target.job.id as string))?.progress)?.step ?? target.step;
    target.worker.signal('SIGKILL');
    assert.equal((await target.worker.exited).signal, 'SIGKILL');
    const [, status] = await Promise.all([ensureWorkers(2), rest(api).waitForBatch(main, BATCH_TIMEOUT_MS, logs)]);
    assert.deepEqual((status as { counts: object }).counts, { total: 5, waiting: 0, active: 0, completed: 5, failed: 0, cancelled: 0 });

    const r = await kvfold(['results', main], { env: { KVFOLD_API_URL: api, KVFOLD_API_KEY: KEY } });
    assert.equal(r.code, 0, r.stderr);
    const results = new Map(parseJsonl(r.stdout).map((x) => [x.docId as string, x]));
    assert.equal(results.size, 5);
    await assertMatchesLocalRun(results, results.keys());

    const killed = results.get(target.docId) as Result;
    const resumedFrom = killed.resumedFromStep as number;
    assert.ok(resumedFrom > 0 && resumedFrom <= reached, `resumed from step ${resumedFrom}, killed at step ${reached}`);
    const resumers = workers.filter((w) => w.logged('resuming from checkpoint', target.docId).length > 0);
    assert.deepEqual(
      resumers.map((w) => w === target.worker),
      [false],
      'resumed once, by a worker other than the one killed',
    );
    assertFoldedOnce(results.keys());
    // BullMQ keeps a summary and the result's key on the job, not the result.
    const job = await queues.documents.getJob(documentJobId(main, target.docId));
    assert.deepEqual(job?.returnvalue, { status: 'completed', tokens: killed.tokens, result: documentResultKey(main, target.docId) });
  });

  it('two SIGKILLs of the workers folding one document: two stalls, no failure; it resumes each time and completes on its first attempt', async () => {
    await ensureWorkers(2);
    const created = await rest(api).postBatch(namedFiles(STALL_DIR), spec());
    const batchId = created.id as string;
    const killed: number[] = [];
    for (const past of [FAULT_AFTER_STEP, 2 * FAULT_AFTER_STEP]) {
      // The second wait is for a step the first fold never reached: the resumed fold, on another worker.
      const target = await waitFor(`the document of ${batchId} past step ${past}`, () => foldPast(batchId, past), START_TIMEOUT_MS, logs);
      target.worker.signal('SIGKILL');
      assert.equal((await target.worker.exited).signal, 'SIGKILL');
      killed.push(target.worker.pid);
      await ensureWorkers(2);
    }
    const status = (await rest(api).waitForBatch(batchId, BATCH_TIMEOUT_MS, logs)) as { counts: object };
    assert.deepEqual(status.counts, { total: 1, waiting: 0, active: 0, completed: 1, failed: 0, cancelled: 0 });
    const results = await rest(api).results(batchId);
    assert.equal(results.size, 1);
    const [docId, result] = [...results.entries()][0] as [string, Result];
    assert.ok((result.resumedFromStep as number) >= 2 * CHECKPOINT_EVERY, `resumed from step ${result.resumedFromStep}`);
    const job = await queues.documents.getJob(documentJobId(batchId, docId));
    assert.equal(job?.stalledCounter, 2, 'stalled twice');
    assert.equal(job?.attemptsMade, 1, 'one attempt: a stall spends none');
    assert.equal(new Set(killed).size, 2, 'two different workers killed');
    await assertMatchesLocalRun(results, results.keys());
    assertFoldedOnce(results.keys());
  });

  it('SIGTERM: the worker commits, hands the job back without consuming an attempt and exits 0; the next worker resumes', async () => {
    await ensureWorkers(2);
    const created = await rest(api).postBatch(namedFiles(TERM_DIR), spec());
    const batchId = created.id as string;
    const target = await waitFor(`the document of ${batchId} past step ${FAULT_AFTER_STEP}`, () => foldPast(batchId, FAULT_AFTER_STEP), START_TIMEOUT_MS, logs);
    target.worker.signal('SIGTERM');
    // Within the grace period: the poll's deadline is the bar.
    await waitFor('the worker to exit after SIGTERM', () => target.worker.gone, GRACE_MS, () => target.worker.tail());
    const exit = await target.worker.exited;
    assert.equal(exit.code, 0, target.worker.tail());
    assert.equal(target.worker.logged('stopping: checkpoint committed, job handed back', target.docId).length, 1, target.worker.tail());

    const job = await queues.documents.getJob(documentJobId(batchId, target.docId));
    assert.ok(job);
    assert.equal(job.attemptsMade, 0, 'handing back consumed no attempt');
    assert.ok(['waiting', 'prioritized', 'active'].includes(await job.getState()), 'the job is back in the queue (or already taken again)');

    await rest(api).waitForBatch(batchId, BATCH_TIMEOUT_MS, logs);
    const results = await rest(api).results(batchId);
    const result = results.get(target.docId) as Result;
    assert.ok((result.resumedFromStep as number) > 0, `resumed from step ${result.resumedFromStep}`);
    assert.equal(result.attempts, 1);
    assert.equal((await queues.documents.getJob(job.id as string))?.attemptsMade, 1, 'one attempt in all');
    await assertMatchesLocalRun(results, results.keys());
    assertFoldedOnce(results.keys());
  });

  it('a worker paused past its lock is fenced: after SIGCONT its commit fails with KVF_CKPT_FENCED, the manifest stays loadable, the result is right', async () => {
    await ensureWorkers(2);
    const created = await rest(api).postBatch(namedFiles(STOP_DIR), spec());
    const batchId = created.id as string;
    const target = await waitFor(`the document of ${batchId} past step ${FAULT_AFTER_STEP}`, () => foldPast(batchId, FAULT_AFTER_STEP), START_TIMEOUT_MS, logs);
    const paused = target.worker;
    paused.signal('SIGSTOP');
    // Its lock expires, a live worker requeues the job as stalled, and a worker claims the checkpoint.
    const successor = await waitFor(
      'another worker to resume the paused worker’s document',
      () => workers.find((w) => w !== paused && w.logged('resuming from checkpoint', target.docId).length > 0),
      START_TIMEOUT_MS,
      logs,
    );
    paused.signal('SIGCONT');
    const fenced = await waitFor(
      'the paused worker to be fenced',
      () => paused.logged('another worker took this document over; this attempt stops without committing', target.docId)[0],
      START_TIMEOUT_MS,
      logs,
    );
    assert.equal((fenced.err as { code?: string }).code, 'KVF_CKPT_FENCED');
    // BullMQ refuses the fenced attempt's outcome (the job's lock is the successor's), and says so as a warning.
    await waitFor('BullMQ to refuse the paused worker’s outcome', () => paused.logged('this worker lost the job to another; its outcome is recorded there').length > 0, START_TIMEOUT_MS, logs);
    assert.equal(paused.logged('queue worker error').length, 0, paused.tail());

    // The successor still folds: its manifest is intact and loads with every segment.
    const store = s3.store('e2e');
    const keys: string[] = [];
    for await (const o of store.list('checkpoints/')) if (o.key.startsWith(`checkpoints/${target.docId}-`) && o.key.endsWith('/manifest.json')) keys.push(o.key);
    assert.equal(keys.length, 1, `one manifest for the document: ${keys.join(', ')}`);
    const docKey = (keys[0] as string).slice('checkpoints/'.length, -'/manifest.json'.length);
    const layout = (await readManifest(store, { prefix: 'checkpoints', docKey }))?.manifest.layout;
    assert.ok(layout);
    const loaded = await loadCheckpoint(store, { prefix: 'checkpoints', docKey }, new HostKvCache(layout));
    assert.ok(loaded, 'the manifest is still there while the successor folds');
    assert.equal(loaded.fellBackFrom, null);
    assert.ok(loaded.step > 0);
    assert.match(loaded.manifest.writerId, new RegExp(`:${successor.pid}$`), 'the successor holds the document');

    await rest(api).waitForBatch(batchId, BATCH_TIMEOUT_MS, logs);
    const results = await rest(api).results(batchId);
    assert.ok((results.get(target.docId)?.resumedFromStep as number) > 0);
    await assertMatchesLocalRun(results, results.keys());
    assertFoldedOnce(results.keys());
    assert.equal(paused.logged('document folded', target.docId).length, 0);
    assert.ok(!paused.gone, 'the fenced worker is still running (it failed the attempt, not the process)');
  });

  it('bad input through the API: a document proven over the token limit is refused at upload, one counted over fails alone; the rest complete', async () => {
    await ensureWorkers(2);
    const created = await rest(api).postBatch(namedFiles(LIMIT_DIR), { ...spec(), maxTokensPerDocument: TOKEN_LIMIT });
    const batchId = created.id as string;
    const refused = (created.report as { refused: { entry: string; code: string; reason: string }[] }).refused;
    assert.deepEqual(refused.map((r) => [r.entry, r.code]), [['limits/too-long.txt', 'KVF_INGEST_DOCUMENT_TOO_LONG']]);
    assert.match(refused[0]?.reason ?? '', /^at least \d+ tokens .* over maxTokensPerDocument 2000/);
    const status = await rest(api).waitForBatch(batchId, BATCH_TIMEOUT_MS, logs);
    assert.deepEqual((status as { counts: object }).counts, { total: 3, waiting: 0, active: 0, completed: 2, failed: 1, cancelled: 0 });
    const results = await rest(api).results(batchId);
    const failed = [...results.values()].filter((r) => r.status === 'failed');
    assert.deepEqual(
      failed.map((r) => [r.paths, (r.error as { code: string }).code]),
      [[['limits/at-limit.txt'], 'KVF_DOC_TOO_LONG']],
    );
    assert.match((failed[0] as { error: { message: string } }).error.message, new RegExp(`over the batch's limit of ${TOKEN_LIMIT} \\(maxTokensPerDocument\\)`));
    const completed = [...results.values()].filter((r) => r.status === 'completed').map((r) => r.docId as string);
    assert.equal(completed.length, 2);
    await assertMatchesLocalRun(results, completed);
  });
  /**
   * A private Redis this file may kill or flush: in-memory only, so a restart comes back empty.
   * These tests need the redis-server binary (the machine's Redis package, as .ci/run assumes).
   */
  async function privateRedis(name: string): Promise<{ url: string; start: () => Promise<AppProcess> }> {
    const version = new AppProcess('redis-version', 'redis-server', ['--version'], process.env);
    assert.equal((await version.exited).code, 0, 'redis-server is not on PATH: install Redis (apt-get install redis-server) to run the Redis restart and flush tests');
    const port = await freePort();
    const start = async (): Promise<AppProcess> => {
      const r = new AppProcess(name, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], process.env);
      processes.push(r);
      await waitFor(`${name} to accept connections`, () => r.logged(/Ready to accept connections/).length > 0 || (r.gone && assert.fail(r.tail())), START_TIMEOUT_MS);
      return r;
    };
    return { url: `redis://127.0.0.1:${port}`, start };
  }

  it('a worker and the API carry on when Redis restarts: a batch enqueued afterwards completes', async () => {
    const redisPrivate = await privateRedis('redis-private');
    const { url, start: startRedis } = redisPrivate;
    let redisServer = await startRedis();
    const env = { ...sharedEnv, REDIS_URL: url, KVFOLD_STORE: s3.uri('e2e-reconnect') };
    const base = await startApi('api-reconnect', env);
    const worker = startApp('worker', 'worker-reconnect', { ...workerEnv, ...env });
    processes.push(worker);
    await waitFor('the worker to be ready', () => worker.logged('kvfold worker ready').length > 0 || (worker.gone && assert.fail(worker.tail())), START_TIMEOUT_MS);

    redisServer.signal('SIGKILL');
    await redisServer.exited;
    await waitFor('the worker to see Redis go', () => worker.logged(/redis connection error|queue worker error/).length > 0, START_TIMEOUT_MS, () => worker.tail());
    redisServer = await startRedis();
    await waitFor('the API to be ready again', () => fetch(`${base}/readyz`).then((r) => r.ok, () => false), START_TIMEOUT_MS, logs);

    const name = 'limits/short-1.txt';
    const created = await rest(base).postBatch([{ path: join(dir, name), name }], spec());
    const batchId = created.id as string;
    await rest(base).waitForBatch(batchId, BATCH_TIMEOUT_MS, logs);
    const results = await rest(base).results(batchId);
    assert.equal(results.size, 1);
    await assertMatchesLocalRun(results, results.keys());
    assert.ok(!worker.gone);
    assert.equal(worker.logged('document folded').length, 1, 'the worker that lived through the restart folded it');
  });

  it('Redis flushed mid-batch (FLUSHALL): status answers throughout, `kvfold batches recover` enqueues what was lost, completed documents are not folded again, results equal `kvfold run`', async () => {
    const redisPrivate = await privateRedis('redis-flush');
    await redisPrivate.start();
    const env = { ...sharedEnv, REDIS_URL: redisPrivate.url, KVFOLD_STORE: s3.uri('e2e-flush') };
    const base = await startApi('api-flush', env);
    const flushWorkers: AppProcess[] = [];
    for (const name of ['worker-flush-1', 'worker-flush-2']) {
      const w = startApp('worker', name, { ...workerEnv, ...env });
      processes.push(w);
      flushWorkers.push(w);
    }
    for (const w of flushWorkers) await waitFor(`${w.name} to be ready`, () => w.logged('kvfold worker ready').length > 0 || (w.gone && assert.fail(w.tail())), START_TIMEOUT_MS, logs);

    const names = ['docs/alpha.txt', 'docs/notes/beta.md', 'limits/short-1.txt', 'limits/short-2.txt'];
    const created = await rest(base).postBatch(names.map((name) => ({ path: join(dir, name), name })), spec());
    const batchId = created.id as string;
    const folded = () => flushWorkers.flatMap((w) => w.logged('document folded').map((l) => l.docId as string));
    // Mid-batch: one document folded to completion, and another still folding.
    await waitFor('a document folded while another folds', () => folded().length >= 1 && folded().length < names.length, BATCH_TIMEOUT_MS, logs);
    const doneBefore = new Set(folded());

    const flusher = createRedis(redisPrivate.url);
    try {
      assert.equal(await flusher.flushall(), 'OK');
    } finally {
      flusher.disconnect();
    }
    // Redis knows nothing now; the API rebuilds the batch's entry from the store.
    const after = await rest(base).status(batchId);
    assert.equal(after.id, batchId);
    assert.ok(['queued', 'in_progress'].includes(after.state as string), `state after the flush: ${String(after.state)}`);
    assert.ok((after.counts as { completed: number }).completed >= doneBefore.size, JSON.stringify(after.counts));

    const recovered = await kvfold(['batches', 'recover', '--json'], { env: { KVFOLD_API_URL: base, KVFOLD_API_KEY: KEY } });
    assert.equal(recovered.code, 0, recovered.stderr);
    const report = JSON.parse(recovered.stdout) as { requeued: Array<{ id: string; requeued: number }> };
    const mine = report.requeued.find((b) => b.id === batchId);
    assert.ok(mine, recovered.stdout);
    assert.ok(mine.requeued >= 1 && mine.requeued <= names.length - doneBefore.size, `requeued ${mine.requeued}, ${doneBefore.size} folded before`);

    // waitForBatch reads the status every poll and fails on anything but 200.
    const status = await rest(base).waitForBatch(batchId, BATCH_TIMEOUT_MS, logs);
    assert.deepEqual((status as { counts: object }).counts, { total: 4, waiting: 0, active: 0, completed: 4, failed: 0, cancelled: 0 });
    const results = await rest(base).results(batchId);
    assert.equal(results.size, 4);
    await assertMatchesLocalRun(results, results.keys());
    for (const docId of doneBefore) {
      const times = flushWorkers.reduce((n, w) => n + w.logged('document folded', docId).length, 0);
      assert.equal(times, 1, `document ${docId}, folded before the flush, was folded ${times} times`);
    }
  });
});
