/**
 * Batches end to end through inject(): multipart uploads of files, directories and archives,
 * idempotent re-upload, status from jobs moved by hand with a real BullMQ Worker, results, cancel.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BatchCancelledError, DocumentJob, DocumentResult, batchResultsKey, documentResultKey, redisOptionsFromUrl } from '@kvfold/jobs';
import type { BatchStatus } from '@kvfold/jobs';
import { UnrecoverableError, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { rawTar, rawZip } from '@kvfold/producer/testing';
import { REDIS_URL, multipartBody, sampleResult, startTestApi } from './testing.ts';
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

describe('batches (inject, real Redis, FsObjectStore)', () => {
  let api: TestApi;
  let worker: Worker;
  let batchId = '';
  let storedCorpusBatch = '';
  const token = randomUUID();
  const status = async (): Promise<BatchStatus> => {
    const res = await api.app.inject({ method: 'GET', url: `/v1/batches/${batchId}`, headers: api.headers });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const take = async (): Promise<Job> => {
    const job = await worker.getNextJob(token);
    assert.ok(job, 'a document job is waiting');
    return job;
  };

  before(async () => {
    api = await startTestApi();
    worker = new Worker(api.queues.documents.name, null, { connection: redisOptionsFromUrl(REDIS_URL), prefix: api.queues.prefix, autorun: false });
  });
  after(async () => {
    await worker.close();
    await api.close();
  });

  it('creates a batch from uploaded files, a directory, a .tar.gz and a .zip, refusing an escaping entry', async () => {
    const body = multipartBody(corpusFiles(), spec);
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...body.headers }, payload: body.payload });
    assert.equal(res.statusCode, 202, res.body);
    const created = res.json();
    batchId = created.id;
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
  });

  it('returns the same id and adds nothing when the same upload comes again', async () => {
    const body = multipartBody(corpusFiles(), spec);
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...api.headers, ...body.headers }, payload: body.payload });
    assert.equal(res.statusCode, 202);
    assert.equal(res.json().id, batchId);
    assert.equal(res.json().added, 0);
    assert.equal(await api.queues.documents.count(), 8);
  });

  it('creates a batch over a stored corpus from a JSON spec', async () => {
    const corpus = (await api.registry.get(batchId))?.record.corpus ?? [];
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { ...spec, corpus, queries: ['Another question?'] } });
    assert.equal(res.statusCode, 202, res.body);
    assert.notEqual(res.json().id, batchId);
    storedCorpusBatch = res.json().id;
    assert.equal(res.json().documents, 8);
    const again = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { ...spec, corpus: [`${api.store.uri}/${corpus[0]}`], queries: ['Another question?'] } });
    assert.equal(again.json().id, res.json().id, 'the same corpus by URI is the same batch');
    await api.app.inject({ method: 'POST', url: `/v1/batches/${res.json().id}/cancel`, headers: api.headers });
  });

  it('reports queued, then counts and progress as a worker takes, completes and fails documents', async () => {
    const queued = await status();
    assert.equal(queued.state, 'queued');
    assert.deepEqual(queued.counts, { total: 8, waiting: 8, active: 0, completed: 0, failed: 0, cancelled: 0 });
    assert.equal(queued.progress.tokens, 0);
    assert.ok(queued.progress.totalTokens > 0);
    assert.equal(queued.etaMs, null);

    let job = await take();
    while (!job.id?.startsWith(batchId)) job = await take(); // skip the other batch's leftovers, if any
    const first = DocumentJob.parse(job.data);
    await job.updateProgress({ tokens: 5, totalTokens: 10, step: 1, totalSteps: 2, etaMs: 100 });
    const active = await status();
    assert.equal(active.state, 'in_progress');
    assert.deepEqual(active.counts, { total: 8, waiting: 7, active: 1, completed: 0, failed: 0, cancelled: 0 });
    assert.equal(active.progress.tokens, 5);
    assert.equal(active.etaMs !== null && active.etaMs > 0, true);

    const done = sampleResult(first);
    await api.store.put(documentResultKey(batchId, first.docId), new Uint8Array(Buffer.from(JSON.stringify(done, null, 2))));
    await api.registry.recordDocumentDone(batchId, { docId: first.docId, status: 'completed', tokens: done.tokens, bytes: first.bytes });
    await job.moveToCompleted(done, token, false);

    const second = await take();
    await second.moveToFailed(new UnrecoverableError('document is too long'), token, false);

    const after2 = await status();
    assert.equal(after2.state, 'in_progress');
    assert.deepEqual(after2.counts, { total: 8, waiting: 6, active: 0, completed: 1, failed: 1, cancelled: 0 });
    assert.ok(after2.progress.tokens >= first.bytes && after2.progress.fraction > 0 && after2.progress.fraction < 1);

    const doc = await api.app.inject({ method: 'GET', url: `/v1/batches/${batchId}/documents/${first.docId}`, headers: api.headers });
    assert.equal(doc.statusCode, 200);
    assert.deepEqual(doc.json(), done);
    const absent = await api.app.inject({ method: 'GET', url: `/v1/batches/${batchId}/documents/${DocumentJob.parse(second.data).docId}`, headers: api.headers });
    assert.equal(absent.statusCode, 404);
    assert.match(absent.json().error.message, /no result yet/);
  });

  it('streams the results written so far as JSONL', async () => {
    const res = await api.app.inject({ method: 'GET', url: `/v1/batches/${batchId}/results`, headers: api.headers });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /application\/x-ndjson/);
    assert.equal(res.headers['x-kvfold-results'], 'partial');
    const lines = res.body.trimEnd().split('\n');
    assert.equal(lines.length, 1);
    assert.equal(DocumentResult.parse(JSON.parse(lines[0] as string)).status, 'completed');
  });

  it('cancels: waiting documents are removed, the active one stops at its next step, then cancelled', async () => {
    const held = await take();
    const heldData = DocumentJob.parse(held.data);
    const res = await api.app.inject({ method: 'POST', url: `/v1/batches/${batchId}/cancel`, headers: api.headers });
    assert.equal(res.statusCode, 202);
    assert.deepEqual(res.json(), { id: batchId, state: 'cancelling', removed: 5 });
    assert.equal(await api.registry.isCancelled(batchId), true);
    const cancelling = await status();
    assert.equal(cancelling.state, 'cancelling');
    assert.deepEqual(cancelling.counts, { total: 8, waiting: 0, active: 1, completed: 1, failed: 1, cancelled: 5 });

    // The worker's part: it sees isCancelled between steps, records the stop, and fails the job for good.
    await api.registry.recordDocumentDone(batchId, { docId: heldData.docId, status: 'cancelled', tokens: 3, bytes: heldData.bytes });
    await held.moveToFailed(new BatchCancelledError(batchId, heldData.docId), token, false);

    const cancelled = await status();
    assert.equal(cancelled.state, 'cancelled');
    assert.deepEqual(cancelled.counts, { total: 8, waiting: 0, active: 0, completed: 1, failed: 1, cancelled: 6 });
    assert.equal(cancelled.progress.fraction, 1);
    assert.equal(await (await api.queues.batches.getJob(batchId))?.getState(), 'waiting', 'the parent is ready to finalize');

    const again = await api.app.inject({ method: 'POST', url: `/v1/batches/${batchId}/cancel`, headers: api.headers });
    assert.deepEqual([again.statusCode, again.json().state], [202, 'cancelled']);
  });

  it('streams results.jsonl once the batch is finalized', async () => {
    const jsonl = '{"line":1}\n{"line":2}\n';
    await api.store.put(batchResultsKey(batchId), new Uint8Array(Buffer.from(jsonl)));
    const res = await api.app.inject({ method: 'GET', url: `/v1/batches/${batchId}/results`, headers: api.headers });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-kvfold-results'], 'final');
    assert.equal(res.body, jsonl);
  });

  it('refuses to cancel a completed batch with 409', async () => {
    const other = (await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { ...spec, corpus: (await api.registry.get(batchId))?.record.corpus, chunkSize: 99 } })).json().id;
    assert.equal(await api.registry.setState(other, 'completed'), 'completed');
    const res = await api.app.inject({ method: 'POST', url: `/v1/batches/${other}/cancel`, headers: api.headers });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json().error.code, 'KVF_API_CONFLICT');
    completedBatch = other;
  });

  let completedBatch = '';
  it('lists every batch newest first with its status, a page at a time', async () => {
    const list = async (query: string) => {
      const res = await api.app.inject({ method: 'GET', url: `/v1/batches${query}`, headers: api.headers });
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as { batches: BatchStatus[]; nextCursor: string | null };
    };
    const first = await list('?limit=2');
    assert.deepEqual(first.batches.map((b) => [b.id, b.state]), [[completedBatch, 'completed'], [storedCorpusBatch, 'cancelled']]);
    assert.ok(first.nextCursor);
    const second = await list(`?limit=2&cursor=${encodeURIComponent(first.nextCursor)}`);
    assert.deepEqual(second.batches.map((b) => [b.id, b.state, b.counts.total]), [[batchId, 'cancelled', 8]]);
    assert.equal(second.nextCursor, null);
    assert.deepEqual((await list('')).batches.map((b) => b.id), [completedBatch, storedCorpusBatch, batchId], 'default page size holds all three');
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
