/**
 * The queue worker in-process on real Redis and a filesystem store: a document whose result is
 * already stored (an earlier attempt wrote it and died before BullMQ heard) is not folded again,
 * is counted in the registry, and its job returns the summary.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BatchRegistry,
  DocumentResult,
  FoldMetrics,
  batchResultsKey,
  createQueues,
  createRedis,
  documentJobId,
  documentResultKey,
  redisOptionsFromUrl,
} from '@kvfold/jobs';
import type { KvfoldQueues, Redis } from '@kvfold/jobs';
import { dropTestQueues } from '@kvfold/jobs/testing';
import { enqueueBatch, ingest, uploadCorpus } from '@kvfold/producer';
import { FsObjectStore } from '@kvfold/storage';
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

  it('a stored result is the answer: no fold, counted once, the job returns its summary', async () => {
    const store = new FsObjectStore(join(dir, 'store'));
    await mkdir(join(dir, 'corpus'));
    await writeFile(join(dir, 'corpus', 'a.txt'), 'a document folded by an attempt that died afterwards\n');
    const { index, indexKey } = await uploadCorpus(store, ingest([join(dir, 'corpus')]));
    // No model exists at this URI: a fold would fail the document.
    const spec = { corpus: [indexKey], model: `file://${join(dir, 'no-model')}`, queries: ['q?'] };
    const { batchId } = await enqueueBatch(queues, spec, index);
    const registry = new BatchRegistry(redis, { prefix });
    const doc = index.documents[0];
    assert.ok(doc);
    await registry.create(
      {
        id: batchId,
        spec: { ...spec },
        createdAt: new Date().toISOString(),
        documents: 1,
        totalBytes: doc.bytes,
        corpusIds: [index.corpusId],
        corpus: [indexKey],
        ingest: { files: 1, documents: 1, bytes: doc.bytes, ignored: 0, skipped: 0, refused: 0 },
      },
      'queued',
    );
    const stored = DocumentResult.parse({
      batchId,
      docId: doc.docId,
      paths: doc.paths,
      status: 'completed',
      tokens: 53,
      steps: 1,
      chunkSize: 256,
      timings: { loadMs: 1, foldMs: 1, generateMs: 1, totalMs: 3, tokensPerSecond: 53000 },
      kvBytes: 1024,
      answers: [{ query: 'q?', text: 'a', tokenIds: [97] }],
      resumedFromStep: 0,
      checkpoint: { segments: 1, bytes: 1024 },
      attempts: 1,
    });
    await store.put(documentResultKey(batchId, doc.docId), new TextEncoder().encode(JSON.stringify(stored)));

    const lines: { msg?: string }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const worker = startQueueWorker({
      redisUrl: REDIS_URL,
      prefix,
      store,
      models: new ModelCache({ cacheDir: join(dir, 'models-cache') }),
      registry,
      metrics: new FoldMetrics(redis, { prefix }),
      log,
      concurrency: 1,
    });
    try {
      await worker.ready();
      for (let i = 0; (await registry.get(batchId))?.state !== 'completed'; i++) {
        assert.ok(i < 400, `the batch did not complete: ${JSON.stringify(lines.slice(-5))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await worker.stop();
    }
    assert.equal(lines.filter((l) => l.msg === 'result already stored; not folding again').length, 1);
    const job = await queues.documents.getJob(documentJobId(batchId, doc.docId));
    assert.deepEqual(job?.returnvalue, { status: 'completed', tokens: 53, result: documentResultKey(batchId, doc.docId) });
    const counters = (await registry.get(batchId))?.counters;
    assert.deepEqual([counters?.completed, counters?.tokens, counters?.bytes], [1, 53, doc.bytes]);
    const results = Buffer.from(await store.getBytes(batchResultsKey(batchId))).toString('utf8');
    assert.deepEqual(JSON.parse(results.trim()), stored);
  });
});
