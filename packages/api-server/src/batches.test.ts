/**
 * Batches end to end through inject(), with the real queue worker (`startQueueWorker`, what
 * `kvfold worker` runs) folding on a real tiny-llama: multipart uploads of files, directories and
 * archives, idempotent re-upload, status as the worker folds and fails documents, results, cancel.
 * Every test runs alone by name: it asks for the steps it builds on (see `once`).
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FoldMetrics, writeBatchRecord } from '@kvfold/jobs';
import { batchRecordOf } from '@kvfold/jobs/testing';
import { BatchSpec, DocumentResult, ResultLine, batchGateJobId, batchResultsKey } from '@kvfold/contract';
import type { BatchStatus } from '@kvfold/contract';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { enqueueBatch, ingest, planBatch, readCorpusIndex, uploadCorpus } from '@kvfold/producer';
import { rawTar, rawZip } from '@kvfold/producer/testing';
import { ModelCache, startQueueWorker } from '@kvfold/runner';
import type { QueueWorker } from '@kvfold/runner';
import { pino } from 'pino';
import { REDIS_URL, multipartBody, startTestApi } from './testing.ts';
import type { TestApi } from './testing.ts';

const spec = { model: 'file:///models/tiny', chunkSize: 64, queries: ['What is inside?'] };

/** The corpus: a walked directory, a loose file, a .tar.gz, a .zip, a tar with an escaping entry, a binary. */
function corpusFiles(): Record<string, string | Uint8Array> {
  return {
    'project/a.txt': 'alpha document\n',
    'project/sub/b.md': '# beta document\n',
    'notes.txt': 'gamma notes\n',
    'logs.tar.gz': rawTar([{ path: 'day1.log', body: 'delta log line\n' }, { path: 'day2.log', body: 'epsilon log line\n' }], true),
    'bundle.zip': rawZip([{ name: 'z1.txt', body: 'zeta text\n' }, { name: 'dir/z2.txt', body: 'eta text\n' }]),
    'evil.tar': rawTar([{ path: '../escape.txt', body: 'theta escaping\n' }, { path: 'fine.txt', body: 'iota fine\n' }]),
    'image.bin': new Uint8Array([0, 1, 2, 0, 255, 0, 7, 0]),
  };
}

/** Runs `step` once, however many tests ask for what it leaves behind. */
function once<T>(step: () => Promise<T>): () => Promise<T> {
  let done: Promise<T> | undefined;
  return () => {
    done ??= step();
    return done;
  };
}

/** Polls `check` until it holds (a deadline, not a timing assertion). */
async function until(what: string, check: () => Promise<boolean>, deadlineMs = 120_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Two batches' lives, told as steps that each test asks for: a test run alone by name (or in any
 * order) runs the steps before it once, with their own assertions, then checks its own part.
 */
describe('batches (inject, real Redis, FsObjectStore, the queue worker on tiny-llama)', () => {
  let api: TestApi;
  let model = '';
  let worker: QueueWorker | undefined;
  let models: ModelCache;
  const status = async (batchId: string): Promise<BatchStatus> => {
    const res = await api.app.inject({ method: 'GET', url: `/v1/batches/${batchId}`, headers: api.headers });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const results = async (batchId: string) => {
    const res = await api.app.inject({ method: 'GET', url: `/v1/batches/${batchId}/results`, headers: api.headers });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.headers['content-type'] as string, /application\/x-ndjson/);
    const lines = res.body === '' ? [] : res.body.trimEnd().split('\n').map((l) => ResultLine.parse(JSON.parse(l)));
    return { final: res.headers['x-kvfold-results'] === 'final', lines };
  };
  const upload = async (files: Record<string, string | Uint8Array>, batchSpec: object) => {
    const body = multipartBody(files, batchSpec);
    return api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...body.headers }, payload: body.payload });
  };
  /** The queue worker `kvfold worker` runs, in this process: one document at a time. */
  const startWorker = async () => {
    assert.equal(worker, undefined, 'one worker at a time');
    worker = startQueueWorker({
      redisUrl: REDIS_URL,
      prefix: api.queues.prefix,
      store: api.store,
      models,
      registry: api.registry,
      metrics: new FoldMetrics(api.redis, { prefix: api.queues.prefix }),
      log: pino({ level: process.env.KVFOLD_TEST_LOG ?? 'silent' }),
      concurrency: 1,
    });
    await worker.ready();
  };
  const stopWorker = async () => {
    await worker?.stop();
    worker = undefined;
  };

  before(async () => {
    api = await startTestApi();
    model = join(api.dir, 'tiny-llama');
    await writeModelFolder(tinyLlamaSpec(), model);
    models = new ModelCache({ cacheDir: join(api.dir, 'models-cache') });
  });
  after(async () => {
    await stopWorker();
    await models.close();
    await api.close();
  });

  const foldSpec = () => ({ model, chunkSize: 64, maxNewTokens: 2, queries: ['What is inside?'] });

  /** The upload of corpusFiles(): the batch id. */
  const uploaded = once(async (): Promise<string> => {
    const res = await upload(corpusFiles(), foldSpec());
    assert.equal(res.statusCode, 202, res.body);
    const created = res.json();
    const batchId = created.id as string;
    assert.match(batchId, /^b[0-9a-f]{32}$/);
    assert.equal(created.state, 'queued');
    assert.equal(created.documents, 8); // a, b, notes, 2 logs, 2 zip entries, fine.txt
    assert.equal(created.added, 9); // 8 documents + the batch's parent job
    assert.deepEqual(
      created.report.refused.map((r: { input: string; entry: string; code: string }) => [r.input, r.entry, r.code]),
      [['evil.tar', '../escape.txt', 'KVF_INGEST_ESCAPING_ENTRY']],
    );
    assert.deepEqual(created.report.skipped.map((s: { input: string }) => s.input), ['image.bin']);
    assert.equal(await api.queues.documents.count(), 8);
    const paths = (await api.queues.documents.getJobs(['prioritized', 'waiting'])).flatMap((j) => j.data.paths).sort();
    // Archive entries keep the archive's name as their first component.
    assert.deepEqual(paths, ['bundle/dir/z2.txt', 'bundle/z1.txt', 'evil/fine.txt', 'logs/day1.log', 'logs/day2.log', 'notes.txt', 'project/a.txt', 'project/sub/b.md']);
    assert.deepEqual(
      created.report.summary.map((s: { kind: string; count: number }) => [s.kind, s.count]),
      [['skipped', 1], ['refused', 1]],
    );
    assert.equal(created.report.key, `batches/${batchId}/ingest-report.json`);
    const stored = JSON.parse(Buffer.from(await api.store.getBytes(created.report.key)).toString('utf8'));
    assert.deepEqual(stored.refused.map((r: { entry: string }) => r.entry), ['../escape.txt']);
    const entry = await api.registry.get(batchId);
    assert.equal(entry?.record.ingest.refused, 1);
    assert.ok(await api.store.head(`batches/${batchId}/spec.json`));
    return batchId;
  });

  /** A second batch over the first one's stored corpus, by key and by URI, cancelled at once. */
  const overStoredCorpus = once(async (): Promise<string> => {
    const batchId = await uploaded();
    const corpus = (await api.registry.get(batchId))?.record.corpus ?? [];
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { ...foldSpec(), corpus, queries: ['Another question?'] } });
    assert.equal(res.statusCode, 202, res.body);
    assert.notEqual(res.json().id, batchId);
    assert.equal(res.json().documents, 8);
    const again = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { ...foldSpec(), corpus: [`${api.store.uri}/${corpus[0]}`], queries: ['Another question?'] } });
    assert.equal(again.json().id, res.json().id, 'the same corpus by URI is the same batch');
    const cancel = await api.app.inject({ method: 'POST', url: `/v1/batches/${res.json().id}/cancel`, headers: api.headers });
    assert.deepEqual([cancel.statusCode, cancel.json().removed], [202, 8]);
    return res.json().id as string;
  });

  /**
   * The first batch folded to the end by the worker, one of its documents unreadable: `notes.txt`'s
   * bytes in the shard no longer hash to its id, which fails that document for good.
   */
  const folded = once(async () => {
    const batchId = await uploaded();
    await overStoredCorpus(); // its documents are gone from the queue before the worker starts
    const queued = await status(batchId);
    assert.equal(queued.state, 'queued');
    assert.deepEqual(queued.counts, { total: 8, waiting: 8, active: 0, completed: 0, failed: 0, cancelled: 0 });
    assert.equal(queued.progress.tokens, 0);
    assert.ok(queued.progress.totalTokens > 0);
    assert.equal(queued.etaMs, null);
    assert.deepEqual(await results(batchId), { final: false, lines: [] });

    const [indexKey] = (await api.registry.get(batchId))?.record.corpus ?? [];
    assert.ok(indexKey);
    const index = await readCorpusIndex(api.store, indexKey);
    const notes = index.documents.find((d) => d.paths.includes('notes.txt'));
    assert.ok(notes);
    const shard = new Uint8Array(await api.store.getBytes(notes.shard.key));
    shard[notes.shard.offset] = (shard[notes.shard.offset] as number) ^ 0x20; // one letter's case flipped
    await api.store.put(notes.shard.key, shard);

    // Every status seen on the way is consistent: counts add up and never go back.
    const seen: BatchStatus[] = [];
    await startWorker();
    try {
      await until('the batch completes', async () => {
        const now = await status(batchId);
        seen.push(now);
        return now.state === 'completed';
      });
    } finally {
      await stopWorker();
    }
    for (const [i, s] of seen.entries()) {
      const { total, waiting, active, completed, failed, cancelled } = s.counts;
      assert.equal(waiting + active + completed + failed + cancelled, total, JSON.stringify(s.counts));
      assert.ok(active <= 1, 'one document at a time');
      const before = seen[i - 1]?.counts;
      if (before) assert.ok(completed >= before.completed && failed >= before.failed, `${JSON.stringify(before)} then ${JSON.stringify(s.counts)}`);
      assert.ok(['queued', 'in_progress', 'finalizing', 'completed'].includes(s.state), s.state);
    }
    return { batchId, notes, final: seen.at(-1) as BatchStatus };
  });

  /** A batch with one long document (folded first: longest first) and three short ones, cancelled while the long one folds. */
  const cancelled = once(async () => {
    await folded(); // the worker is free for this batch alone
    const files = { 'long.txt': 'A long document that takes several seconds to fold in chunks of sixteen. '.repeat(600), 'one.txt': 'one\n', 'two.txt': 'two\n', 'three.txt': 'three\n' };
    const res = await upload(files, { ...foldSpec(), chunkSize: 16 });
    assert.equal(res.statusCode, 202, res.body);
    const batchId = res.json().id as string;
    const long = (await api.queues.documents.getJobs(['prioritized', 'waiting'])).find((j) => j.data.paths.includes('long.txt'));
    assert.ok(long?.id);
    await startWorker();
    try {
      await until('the long document reports progress', async () => Boolean((await api.queues.documents.getJob(long.id as string))?.progress));
      const active = await status(batchId);
      assert.equal(active.state, 'in_progress');
      assert.deepEqual(active.counts, { total: 4, waiting: 3, active: 1, completed: 0, failed: 0, cancelled: 0 });
      assert.ok(active.progress.tokens > 0 && active.progress.fraction < 1, JSON.stringify(active.progress));
      assert.deepEqual(await results(batchId), { final: false, lines: [] }, 'nothing written yet');

      const cancel = await api.app.inject({ method: 'POST', url: `/v1/batches/${batchId}/cancel`, headers: api.headers });
      assert.equal(cancel.statusCode, 202);
      assert.deepEqual(cancel.json(), { id: batchId, state: 'cancelling', removed: 3 });
      assert.equal(await api.registry.isCancelled(batchId), true);
      const cancelling = await status(batchId);
      // The worker may already have stopped the long document; either way the others are cancelled.
      if (cancelling.state === 'cancelling') assert.deepEqual(cancelling.counts, { total: 4, waiting: 0, active: 1, completed: 0, failed: 0, cancelled: 3 });
      await until('the batch is cancelled and finalized', async () => (await status(batchId)).state === 'cancelled' && (await results(batchId)).final);
    } finally {
      await stopWorker();
    }
    const job = await api.queues.documents.getJob(long.id);
    const progress = job?.progress as { step: number; totalSteps: number };
    assert.ok(progress.step < progress.totalSteps, `stopped at step ${progress.step} of ${progress.totalSteps}`);
    return { batchId, longId: long.id };
  });

  /** A third batch over the same corpus (another chunk size), marked completed. */
  const completedOther = once(async (): Promise<string> => {
    const batchId = await uploaded();
    const other = (await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { ...foldSpec(), corpus: (await api.registry.get(batchId))?.record.corpus, chunkSize: 99 } })).json().id as string;
    assert.equal(await api.registry.setState(other, 'completed'), 'completed');
    // Its documents are not for the worker to fold.
    for (const job of await api.queues.documents.getJobs(['prioritized', 'waiting'])) if (job.data.batchId === other) await job.remove();
    return other;
  });

  it('creates a batch from uploaded files, a directory, a .tar.gz and a .zip, refusing an escaping entry', async () => {
    assert.match(await uploaded(), /^b[0-9a-f]{32}$/);
  });

  it('returns the same id and adds nothing when the same upload comes again', async () => {
    const batchId = await uploaded();
    const waiting = await api.queues.documents.count();
    const res = await upload(corpusFiles(), foldSpec());
    assert.equal(res.statusCode, 202);
    assert.equal(res.json().id, batchId);
    assert.equal(res.json().added, 0);
    assert.equal(await api.queues.documents.count(), waiting);
  });

  it('creates a batch over a stored corpus from a JSON spec', async () => {
    assert.notEqual(await overStoredCorpus(), await uploaded());
  });

  it('counts what the worker folds and fails: 7 completed, the unreadable one failed with its reason', async () => {
    const { batchId, final } = await folded();
    assert.deepEqual(final.counts, { total: 8, waiting: 0, active: 0, completed: 7, failed: 1, cancelled: 0 });
    assert.equal(final.progress.fraction, 1);
    const entry = await api.registry.get(batchId);
    assert.equal(final.progress.tokens, entry?.counters.tokens);
  });

  it('serves each document\'s result, the failed one\'s with its code; 404 for a document without one', async () => {
    const { batchId, notes } = await folded();
    const failed = await api.app.inject({ method: 'GET', url: `/v1/batches/${batchId}/documents/${notes.docId}`, headers: api.headers });
    assert.equal(failed.statusCode, 200);
    const result = DocumentResult.parse(failed.json());
    assert.deepEqual([result.status, result.error?.code, result.paths], ['failed', 'KVF_DOC_UNREADABLE', ['notes.txt']]);
    const other = await overStoredCorpus(); // cancelled before anything folded
    const absent = await api.app.inject({ method: 'GET', url: `/v1/batches/${other}/documents/${notes.docId}`, headers: api.headers });
    assert.equal(absent.statusCode, 404);
    assert.match(absent.json().error.message, /no result yet/);
  });

  it('streams results.jsonl once the batch is finalized: one line per document, as the worker wrote them', async () => {
    const { batchId, notes } = await folded();
    const { final, lines } = await results(batchId);
    assert.equal(final, true);
    assert.equal(lines.length, 8);
    assert.deepEqual(lines.map((l) => l.status).sort(), [...Array(7).fill('completed'), 'failed']);
    const stored = Buffer.from(await api.store.getBytes(batchResultsKey(batchId))).toString('utf8');
    assert.equal(stored.trimEnd().split('\n').length, 8);
    assert.equal(lines.find((l) => l.docId === notes.docId)?.status, 'failed');
    for (const line of lines.filter((l) => l.status === 'completed')) {
      const answers = (line as DocumentResult).answers;
      assert.equal(answers[0]?.query, 'What is inside?');
      assert.ok((line as DocumentResult).tokens > 0);
    }
  });

  it('cancels: waiting documents are removed, the active one stops at its next step, and every one is cancelled in results.jsonl', async () => {
    const { batchId, longId } = await cancelled();
    const after = await status(batchId);
    assert.equal(after.state, 'cancelled');
    assert.deepEqual(after.counts, { total: 4, waiting: 0, active: 0, completed: 0, failed: 0, cancelled: 4 });
    assert.equal(after.progress.fraction, 1);
    const { lines } = await results(batchId);
    assert.deepEqual(lines.map((l) => [l.status, l.error?.code]), Array(4).fill(['cancelled', 'KVF_BATCH_CANCELLED']));
    const job = await api.queues.documents.getJob(longId);
    assert.match(job?.failedReason ?? '', /KVF_BATCH_CANCELLED/);

    const again = await api.app.inject({ method: 'POST', url: `/v1/batches/${batchId}/cancel`, headers: api.headers });
    assert.deepEqual([again.statusCode, again.json().state], [202, 'cancelled']);
  });

  it('refuses to cancel a completed batch with 409', async () => {
    const other = await completedOther();
    const res = await api.app.inject({ method: 'POST', url: `/v1/batches/${other}/cancel`, headers: api.headers });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error.code, 'KVF_API_CONFLICT');
  });

  it('lists every batch newest first with its status, a page at a time', async () => {
    // Made in this order: the upload, the batch over its stored corpus (cancelled), the long one (cancelled), the completed one.
    const { batchId: longBatch } = await cancelled();
    const batchId = await uploaded();
    const storedCorpusBatch = await overStoredCorpus();
    const completedBatch = await completedOther();
    const list = async (query: string) => {
      const res = await api.app.inject({ method: 'GET', url: `/v1/batches${query}`, headers: api.headers });
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as { batches: BatchStatus[]; nextCursor: string | null };
    };
    const first = await list('?limit=2');
    assert.deepEqual(first.batches.map((b) => [b.id, b.state]), [[completedBatch, 'completed'], [longBatch, 'cancelled']]);
    assert.ok(first.nextCursor);
    const second = await list(`?limit=2&cursor=${encodeURIComponent(first.nextCursor)}`);
    assert.deepEqual(second.batches.map((b) => [b.id, b.state, b.counts.total]), [[storedCorpusBatch, 'cancelled', 8], [batchId, 'completed', 8]]);
    assert.equal(second.nextCursor, null);
    assert.deepEqual((await list('')).batches.map((b) => b.id), [completedBatch, longBatch, storedCorpusBatch, batchId], 'default page size holds all four');
  });

  it('answers 400 naming the query field, and 401 without a key', async () => {
    for (const [query, field] of [['?limit=0', 'limit'], ['?limit=many', 'limit'], ['?limit=101', 'limit'], ['?page=2', 'page'], ['?cursor=xyz', 'cursor']] as const) {
      const res = await api.app.inject({ method: 'GET', url: `/v1/batches${query}`, headers: api.headers });
      assert.equal(res.statusCode, 400, query);
      assert.ok(res.json().error.message.includes(field), `${query}: ${res.json().error.message}`);
    }
    const anonymous = await api.app.inject({ method: 'GET', url: '/v1/batches' });
    assert.equal(anonymous.statusCode, 401);
  });
});

describe('retention of finished document jobs', () => {
  it('enqueues with the retention the API was configured with', async () => {
    const api = await startTestApi({ enqueue: { keepCompletedS: 60, keepFailedS: 600 } });
    try {
      const body = multipartBody({ 'a.txt': 'kept an hour at most\n' }, spec);
      const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...body.headers }, payload: body.payload });
      assert.equal(res.statusCode, 202, res.body);
      const [job] = await api.queues.documents.getJobs(['prioritized', 'waiting']);
      assert.deepEqual([job?.opts.removeOnComplete, job?.opts.removeOnFail], [{ age: 60 }, { age: 600 }]);
    } finally {
      await api.close();
    }
  });
});

describe('uploads: bad input', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ limits: { uploadBytes: 4096 } });
  });
  after(() => api.close());

  it('answers 400 naming the spec field, and for an upload without spec', async () => {
    const bad = multipartBody({ 'a.txt': 'hello' }, { ...spec, kvCodec: 'bf16' });
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...bad.headers }, payload: bad.payload });
    assert.equal(res.statusCode, 400);
    assert.match(res.json().error.message, /kvCodec: must be one of 'f32', 'f16', 'int8'/);
    const none = multipartBody({ 'a.txt': 'hello' });
    const res2 = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...none.headers }, payload: none.payload });
    assert.equal(res2.statusCode, 400);
    assert.match(res2.json().error.message, /^spec: missing form field/);
  });

  it('answers 413 for an upload over the limit and 400 when nothing is left to fold', async () => {
    const big = multipartBody({ 'big.txt': 'x'.repeat(8192) }, spec);
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...big.headers }, payload: big.payload });
    assert.equal(res.statusCode, 413);
    assert.equal(res.json().error.code, 'KVF_API_BODY_TOO_LARGE');
    const empty = multipartBody({ 'empty.txt': '' }, spec);
    const res2 = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...empty.headers }, payload: empty.payload });
    assert.equal(res2.statusCode, 400);
    assert.equal(res2.json().error.code, 'KVF_CORPUS_NO_DOCUMENTS');
  });
});

describe('batches: upload reports and content identity (inject, real Redis, FsObjectStore)', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api.close();
  });

  it('answers one summary per reason with the first few entries; the store keeps every one', async () => {
    const links = rawTar([
      { path: 'ok.txt', body: 'kept\n' },
      ...Array.from({ length: 40 }, (_, i) => ({ path: `l${String(i).padStart(2, '0')}`, type: 'SymbolicLink' as const, linkpath: '/etc/passwd' })),
    ]);
    const body = multipartBody({ 'links.tar': links, 'garbage.tar.gz': Buffer.alloc(2048, 0x5a) }, spec);
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...body.headers }, payload: body.payload });
    assert.equal(res.statusCode, 202, res.body);
    const { report, id } = res.json();
    assert.deepEqual(
      report.summary.map((s: { code: string; count: number; first: string[] }) => [s.code, s.count, s.first]),
      [
        ['KVF_INGEST_LINK_ENTRY', 40, ['links.tar: l00', 'links.tar: l01', 'links.tar: l02']],
        ['KVF_INGEST_CORRUPT_ARCHIVE', 1, [`garbage.tar.gz: ${report.refused[3]?.entry}`]],
      ],
    );
    assert.equal(report.refused.length, 4);
    const stored = JSON.parse(Buffer.from(await api.store.getBytes(`batches/${id}/ingest-report.json`)).toString('utf8'));
    assert.equal(stored.refused.length, 41);
  });

  it('a folder sent file by file and a tar of it are one corpus: the second upload adds nothing', async () => {
    const folder = multipartBody({ 'same/a.txt': 'one\n', 'same/sub/b.txt': 'two\n' }, spec);
    const first = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...folder.headers }, payload: folder.payload });
    assert.equal(first.statusCode, 202, first.body);
    assert.ok(first.json().added > 0);
    const tar = rawTar([{ path: 'a.txt', body: 'one\n' }, { path: 'sub/b.txt', body: 'two\n' }], true);
    const archived = multipartBody({ 'same.tar.gz': tar }, spec);
    const second = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...archived.headers }, payload: archived.payload });
    assert.equal(second.statusCode, 202, second.body);
    assert.equal(second.json().id, first.json().id);
    assert.equal(second.json().added, 0);
  });
});

describe('cancel of a batch whose enqueue was cut off between chunks (inject, real Redis, FsObjectStore)', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  it('removes the attached documents, not the gate, and no later enqueue attaches the rest', async () => {
    const dir = join(api.dir, 'gated');
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < 5; i++) await writeFile(join(dir, `doc-${i}.txt`), `document ${i}\n`.repeat(i + 1));
    const { index, indexKey } = await uploadCorpus(api.store, ingest([dir]));
    const batchSpec = BatchSpec.parse({ ...spec, corpus: [indexKey] });
    const record = batchRecordOf(batchSpec, index, indexKey);
    await writeBatchRecord(api.store, record);
    await api.registry.create(record, 'queued');
    // The documents queue refuses the second chunk, as if the API died while attaching them.
    const cut = { ...api.queues, documents: Object.create(api.queues.documents, { addBulk: { value: async () => Promise.reject(new Error('cut off')) } }) };
    await assert.rejects(enqueueBatch(cut, planBatch(batchSpec, index), { chunk: 2 }), /cut off/);
    assert.ok(await api.queues.batches.getJob(batchGateJobId(record.id)), 'the gate holds the parent');

    const res = await api.app.inject({ method: 'POST', url: `/v1/batches/${record.id}/cancel`, headers: api.headers });
    assert.equal(res.statusCode, 202, res.body);
    assert.deepEqual(res.json(), { id: record.id, state: 'cancelled', removed: 2 });
    assert.equal(await api.queues.batches.getJob(batchGateJobId(record.id)), undefined, 'the gate went with the waiting documents');
    // The enqueue resumed (the same upload again) finds the gate gone: nothing more is attached.
    assert.equal((await enqueueBatch(api.queues, planBatch(batchSpec, index), { chunk: 2 })).added, 0);
    assert.equal((await api.queues.documents.getJobs(['prioritized', 'waiting'])).filter((j) => j.data.batchId === record.id).length, 0);
    const status = (await api.app.inject({ method: 'GET', url: `/v1/batches/${record.id}`, headers: api.headers })).json() as BatchStatus;
    assert.deepEqual(status.counts, { total: 5, waiting: 0, active: 0, completed: 0, failed: 0, cancelled: 5 });
  });
});
