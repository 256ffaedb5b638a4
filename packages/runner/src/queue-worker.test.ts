/**
 * The queue worker in-process on real Redis, a filesystem store and a real tiny-llama: a document
 * whose result is already stored (an earlier attempt wrote it and died before BullMQ heard) is not
 * folded again but is counted; a document that fails its last attempt with a transient error is
 * counted failed; a batch cancelled mid-fold stops its document at a step.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BatchRegistry, FoldMetrics, QUEUE_NAMES, createQueues, createRedis, redisOptionsFromUrl, writeBatchRecord } from '@kvfold/jobs';
import { DocumentResult, batchResultsKey, documentJobId, documentResultKey } from '@kvfold/contract';
import type { BatchSpecInput } from '@kvfold/contract';
import type { KvfoldQueues, Redis } from '@kvfold/jobs';
import { dropTestQueues } from '@kvfold/jobs/testing';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { enqueueBatch, ingest, planBatch, uploadCorpus } from '@kvfold/producer';
import { FsObjectStore } from '@kvfold/storage';
import { UnrecoverableError, Worker } from 'bullmq';
import { pino } from 'pino';
import { ModelCache } from './model-cache.ts';
import { startQueueWorker } from './queue-worker.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('startQueueWorker (real Redis, FsObjectStore)', () => {
  let dir = '';
  let redis: Redis;
  let queues: KvfoldQueues;
  const prefix = `{test-${randomUUID()}}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kvfold-queue-worker-'));
    redis = createRedis(REDIS_URL);
    queues = createQueues(redisOptionsFromUrl(REDIS_URL), prefix);
  });
  after(async () => {
    await dropTestQueues(queues, redis);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  /** Uploads one document, enqueues it as a batch over `model` and registers the batch. */
  async function oneDocumentBatch(name: string, text: string, model: string, extra: Partial<BatchSpecInput> = {}) {
    const store = new FsObjectStore(join(dir, 'store'));
    await mkdir(join(dir, name), { recursive: true });
    await writeFile(join(dir, name, 'doc.txt'), text);
    const { index, indexKey } = await uploadCorpus(store, ingest([join(dir, name)]));
    const spec = { corpus: [indexKey], model, queries: ['q?'], ...extra };
    const { batchId } = await enqueueBatch(queues, planBatch(spec, index), { attempts: 1 });
    const registry = new BatchRegistry(redis, { prefix });
    const doc = index.documents[0];
    assert.ok(doc);
    await registry.create(
      {
        id: batchId,
        spec,
        createdAt: new Date().toISOString(),
        documents: 1,
        totalBytes: doc.bytes,
        corpusIds: [index.corpusId],
        corpus: [indexKey],
        ingest: { files: 1, documents: 1, bytes: doc.bytes, ignored: 0, skipped: 0, refused: 0 },
      },
      'queued',
    );
    return { store, batchId, doc, registry };
  }

  /** Runs a queue worker, with its log lines captured, until `done` holds. */
  async function workUntil(store: FsObjectStore, registry: BatchRegistry, done: () => Promise<boolean>, during?: () => Promise<void>) {
    const lines: ({ msg?: string } & Record<string, unknown>)[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const models = new ModelCache({ cacheDir: join(dir, 'models-cache') });
    const worker = startQueueWorker({
      redisUrl: REDIS_URL,
      prefix,
      store,
      models,
      registry,
      metrics: new FoldMetrics(redis, { prefix }),
      log,
      concurrency: 1,
    });
    try {
      await worker.ready();
      await during?.();
      for (let i = 0; !(await done()); i++) {
        assert.ok(i < 1200, `timed out: ${JSON.stringify(lines.slice(-5))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await worker.stop();
      await models.close();
    }
    return lines;
  }

  /** Stores a completed result for the batch's document, as an attempt that died after writing it would have. */
  async function storeResult(store: FsObjectStore, batchId: string, doc: { docId: string; paths: string[] }, tokens: number) {
    const stored = DocumentResult.parse({
      batchId,
      docId: doc.docId,
      paths: doc.paths,
      status: 'completed',
      tokens,
      steps: 1,
      chunkSize: 256,
      timings: { loadMs: 1, foldMs: 1, generateMs: 1, totalMs: 3, tokensPerSecond: tokens * 1000 },
      kvBytes: 1024,
      answers: [{ query: 'q?', text: 'a', tokenIds: [97] }],
      resumedFromStep: 0,
      checkpoint: { segments: 1, bytes: 1024 },
      attempts: 1,
    });
    await store.put(documentResultKey(batchId, doc.docId), new TextEncoder().encode(JSON.stringify(stored)));
    return stored;
  }

  it('a stored result is the answer: no fold, counted once, the job returns its summary', async () => {
    // No model exists at this URI: a fold would fail the document.
    const { store, batchId, doc, registry } = await oneDocumentBatch('stored', 'a document folded by an attempt that died afterwards\n', `file://${join(dir, 'no-model')}`);
    const stored = await storeResult(store, batchId, doc, 53);

    const lines = await workUntil(store, registry, async () => (await registry.get(batchId))?.state === 'completed');
    assert.equal(lines.filter((l) => l.msg === 'result already stored; not folding again').length, 1);
    const job = await queues.documents.getJob(documentJobId(batchId, doc.docId));
    assert.deepEqual(job?.returnvalue, { status: 'completed', tokens: 53, result: documentResultKey(batchId, doc.docId) });
    const counters = (await registry.get(batchId))?.counters;
    assert.deepEqual([counters?.completed, counters?.tokens, counters?.bytes], [1, 53, doc.bytes]);
    const results = Buffer.from(await store.getBytes(batchResultsKey(batchId))).toString('utf8');
    assert.deepEqual(JSON.parse(results.trim()), stored);
  });

  it('a batch Redis lost is rebuilt from the store when its document is counted; the job completes', async () => {
    const { store, batchId, doc, registry } = await oneDocumentBatch('lost', 'a document whose batch entry Redis lost\n', `file://${join(dir, 'no-model')}`);
    const record = (await registry.get(batchId))?.record;
    assert.ok(record);
    await writeBatchRecord(store, record);
    await storeResult(store, batchId, doc, 41);
    await registry.delete(batchId);

    await workUntil(store, registry, async () => (await registry.get(batchId))?.state === 'completed');
    const job = await queues.documents.getJob(documentJobId(batchId, doc.docId));
    assert.equal(await job?.getState(), 'completed', job?.failedReason);
    assert.deepEqual([(await registry.get(batchId))?.counters.completed, (await registry.get(batchId))?.counters.tokens], [1, 41]);
  });

  it('a document whose last attempt fails with a transient error is counted failed, without a result', async () => {
    const { store, batchId, doc, registry } = await oneDocumentBatch('transient', 'a document whose shard the store lost\n', `file://${join(dir, 'no-model')}`);
    // A shard the store cannot serve is transient (the store may answer next time); with one
    // attempt allowed, that attempt is the last.
    await store.delete(doc.shard.key);
    const jobId = documentJobId(batchId, doc.docId);
    await workUntil(store, registry, async () => (await registry.get(batchId))?.counters.failed === 1);
    const job = await queues.documents.getJob(jobId);
    assert.equal(await job?.getState(), 'failed');
    assert.match(job?.failedReason ?? '', /no object corpora\/[0-9a-f]{64}\/shards\//);
    const counters = (await registry.get(batchId))?.counters;
    assert.deepEqual([counters?.completed, counters?.failed, counters?.cancelled], [0, 1, 0]);
    assert.equal(await store.head(documentResultKey(batchId, doc.docId)), null, 'a transient failure stores no result');
  });

  it('a document job failed without any worker counting it (as BullMQ fails a job that stalled too often) is counted failed at finalize: the counts equal the results', async () => {
    const { store, batchId, doc, registry } = await oneDocumentBatch('uncounted', 'a document whose job failed outside every worker\n', `file://${join(dir, 'no-model')}`);
    const jobId = documentJobId(batchId, doc.docId);
    // A bare BullMQ worker fails the job: nothing of ours sees it fail.
    const bare = new Worker(QUEUE_NAMES.documents, async () => {
      throw new UnrecoverableError('job stalled more than allowable limit');
    }, { connection: { ...redisOptionsFromUrl(REDIS_URL), maxRetriesPerRequest: null }, prefix });
    try {
      for (let i = 0; (await (await queues.documents.getJob(jobId))?.getState()) !== 'failed'; i++) {
        assert.ok(i < 200, 'the bare worker failed the job');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await bare.close();
    }
    assert.equal((await registry.get(batchId))?.counters.failed, 0, 'not counted yet');
    await workUntil(store, registry, async () => (await registry.get(batchId))?.state === 'completed');
    const counters = (await registry.get(batchId))?.counters;
    assert.deepEqual([counters?.completed, counters?.failed, counters?.cancelled], [0, 1, 0]);
    const line = JSON.parse(new TextDecoder().decode(await store.getBytes(batchResultsKey(batchId))).trim());
    assert.equal(line.status, 'failed');
    assert.match(line.error.message, /job stalled more than allowable limit/);
  });

  it('a batch cancelled mid-fold stops its document at a step: counted cancelled, no result, the job failed for good', async () => {
    const model = join(dir, 'tiny-llama');
    await writeModelFolder(tinyLlamaSpec(), model);
    const text = 'A long document that takes several seconds to fold in chunks of sixteen. '.repeat(1200);
    const { store, batchId, doc, registry } = await oneDocumentBatch('cancel', text, model, { chunkSize: 16 });
    const jobId = documentJobId(batchId, doc.docId);
    const lines = await workUntil(
      store,
      registry,
      async () => (await queues.documents.getJob(jobId))?.failedReason !== undefined,
      async () => {
        // Cancel once the fold is under way, as `POST /v1/batches/:id/cancel` does.
        for (let i = 0; !(await queues.documents.getJob(jobId))?.progress; i++) {
          assert.ok(i < 600, 'the fold did not start');
          await new Promise((r) => setTimeout(r, 20));
        }
        await registry.requestCancel(batchId);
      },
    );
    const job = await queues.documents.getJob(jobId);
    assert.match(job?.failedReason ?? '', /KVF_BATCH_CANCELLED: document [0-9a-f]{64} stopped because batch b[0-9a-f]{32} was cancelled/);
    assert.equal(job?.attemptsMade, 1);
    const progress = job?.progress as { step: number; totalSteps: number };
    assert.ok(progress.step < progress.totalSteps, `stopped at step ${progress.step} of ${progress.totalSteps}`);
    assert.equal((await registry.get(batchId))?.counters.cancelled, 1);
    assert.equal(await store.head(documentResultKey(batchId, doc.docId)), null, 'no result for a cancelled document');
    assert.equal(lines.filter((l) => l.msg === 'document folded').length, 0);
  });
});
