/**
 * Retry through the real queue worker (real Redis, a filesystem store, tiny-llama): a batch whose
 * model folder was missing fails its document, and once the folder appears `retryBatch` folds it to
 * completion; a cancelled batch is resumed by retry, which folds only its unfinished documents.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BatchRegistry, FoldMetrics, createQueues, createRedis, redisOptionsFromUrl, writeBatchRecord, writeCancelMarker } from '@kvfold/jobs';
import { BatchSpec, DEFAULT_CHECKPOINT_EVERY, ResultLine, batchResultsKey, documentJobId } from '@kvfold/contract';
import type { BatchSpecInput } from '@kvfold/contract';
import type { KvfoldQueues, Redis } from '@kvfold/jobs';
import { batchRecordOf, dropTestQueues } from '@kvfold/jobs/testing';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { enqueueBatch, ingest, planBatch, retryBatch, uploadCorpus } from '@kvfold/producer';
import { FsObjectStore } from '@kvfold/storage';
import { pino } from 'pino';
import { ModelCache } from './model-cache.ts';
import { startQueueWorker } from './queue-worker.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

type LogLine = { msg?: string; docId?: string } & Record<string, unknown>;

describe('retryBatch with the queue worker (real Redis, FsObjectStore, tiny-llama)', () => {
  let dir = '';
  let redis: Redis;
  let queues: KvfoldQueues;
  let store: FsObjectStore;
  let registry: BatchRegistry;
  const prefix = `{test-${randomUUID()}}`;
  const lines: LogLine[] = [];
  let worker: ReturnType<typeof startQueueWorker> | undefined;
  let models: ModelCache;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kvfold-retry-'));
    redis = createRedis(REDIS_URL);
    queues = createQueues(redisOptionsFromUrl(REDIS_URL), prefix);
    store = new FsObjectStore(join(dir, 'store'));
    registry = new BatchRegistry(redis, { prefix });
    models = new ModelCache({ cacheDir: join(dir, 'models-cache') });
  });
  after(async () => {
    await worker?.stop();
    await models.close();
    await dropTestQueues(queues, redis);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  function startWorker() {
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    worker = startQueueWorker({ redisUrl: REDIS_URL, prefix, store, models, registry, metrics: new FoldMetrics(redis, { prefix }), log, concurrency: 1 });
    return worker.ready();
  }

  /** Uploads `docs` (name -> text), records the batch in the registry and the store, and enqueues it, as the API does. */
  async function batch(name: string, docs: Record<string, string>, model: string, extra: Partial<BatchSpecInput> = {}) {
    for (const [file, text] of Object.entries(docs)) {
      await mkdir(join(dir, name), { recursive: true });
      await writeFile(join(dir, name, file), text);
    }
    const { index, indexKey } = await uploadCorpus(store, ingest([join(dir, name)]));
    const spec = BatchSpec.parse({ corpus: [indexKey], model, queries: ['q?'], maxNewTokens: 2, ...extra });
    const record = batchRecordOf(spec, index, indexKey);
    await registry.create(record, 'queued');
    await writeBatchRecord(store, record);
    await enqueueBatch(queues, planBatch(spec, index), { attempts: 1 });
    return { batchId: record.id, index };
  }

  async function until(what: string, done: () => Promise<boolean>) {
    for (let i = 0; !(await done()); i++) {
      assert.ok(i < 2400, `timed out waiting for ${what}: ${JSON.stringify(lines.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function resultLines(batchId: string): Promise<ResultLine[]> {
    const text = Buffer.from(await store.getBytes(batchResultsKey(batchId))).toString('utf8');
    return text.trimEnd().split('\n').map((l) => ResultLine.parse(JSON.parse(l)));
  }

  const ended = (batchId: string, state: string) => async () => (await registry.get(batchId))?.state === state && (await store.head(batchResultsKey(batchId))) !== null;

  it('a document failed because its model folder was missing completes after retry, once the folder is there', async () => {
    const model = join(dir, 'late-model');
    const { batchId } = await batch('late', { 'doc.txt': 'A document whose model arrives late.\n' }, model);
    await startWorker();
    await until('the batch to complete with its document failed', ended(batchId, 'completed'));
    const [failed] = await resultLines(batchId);
    assert.equal(failed?.status, 'failed');
    assert.equal((failed as { error: { code: string } }).error.code, 'KVF_DOC_MODEL');

    await writeModelFolder(tinyLlamaSpec(), model);
    const answer = await retryBatch({ store, queues, registry }, batchId);
    assert.deepEqual(answer, { id: batchId, state: 'queued', requeued: 1 });
    assert.equal(await store.head(batchResultsKey(batchId)), null, 'the old results.jsonl is gone until the batch finalizes again');
    await until('the retried batch to complete', ended(batchId, 'completed'));
    const [line] = await resultLines(batchId);
    assert.equal(line?.status, 'completed');
    const counters = (await registry.get(batchId))?.counters;
    assert.deepEqual([counters?.completed, counters?.failed], [1, 0]);
  });

  it('a cancelled batch resumed by retry folds only its unfinished documents; completed ones are kept', async () => {
    const model = join(dir, 'tiny-llama');
    await writeModelFolder(tinyLlamaSpec(), model);
    // Longest first, one at a time: `first` completes, `second` is cancelled mid-fold, `third` waits.
    const docs = {
      'first.txt': 'The longest one, folded to completion before the cancel. '.repeat(160),
      'second.txt': 'The second, stopped mid-fold. '.repeat(270),
      'third.txt': 'The third, never started.\n',
    };
    await worker?.stop();
    // Small steps: the second fold spans several of the worker's once-a-second cancel polls even on a fast machine.
    const { batchId, index } = await batch('resume', docs, model, { chunkSize: 8 });
    const docOf = (file: string) => index.documents.find((d) => d.paths.some((p) => p.endsWith(`/${file}`) || p === file))?.docId as string;
    await startWorker();
    const folded = (docId: string) => lines.filter((l) => l.msg === 'document folded' && l.docId === docId).length;
    const progressOf = async (docId: string) => (await queues.documents.getJob(documentJobId(batchId, docId)))?.progress as { step?: number } | undefined;
    await until('the second document to be past its first checkpoint', async () => ((await progressOf(docOf('second.txt')))?.step ?? 0) > 2 * DEFAULT_CHECKPOINT_EVERY);
    // Cancel as the API does (flag, store marker): the fold stops at a step, the waiting document is skipped.
    await registry.requestCancel(batchId);
    await writeCancelMarker(store, batchId, new Date().toISOString());
    await until('the batch to end cancelled', ended(batchId, 'cancelled'));
    const cancelledLines = await resultLines(batchId);
    const statusOf = (ls: ResultLine[], file: string) => ls.find((l) => l.docId === docOf(file))?.status;
    assert.deepEqual(['first.txt', 'second.txt', 'third.txt'].map((f) => statusOf(cancelledLines, f)), ['completed', 'cancelled', 'cancelled']);

    const answer = await retryBatch({ store, queues, registry }, batchId);
    assert.deepEqual(answer, { id: batchId, state: 'queued', requeued: 2 });
    await until('the resumed batch to complete', ended(batchId, 'completed'));
    const final = await resultLines(batchId);
    assert.deepEqual(final.map((l) => l.status), ['completed', 'completed', 'completed'], JSON.stringify(final));
    for (const d of index.documents) assert.equal(folded(d.docId), 1, `${d.paths[0]} folded once`);
    const resumed = lines.filter((l) => l.msg === 'resuming from checkpoint' && l.docId === docOf('second.txt'));
    assert.equal(resumed.length, 1, 'the stopped document resumed from its checkpoint');
  });
});
