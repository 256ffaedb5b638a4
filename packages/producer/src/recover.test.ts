/**
 * `recover` on real Redis and a filesystem store: a batch whose enqueue was cut off between chunks
 * (its parent held by the gate, some documents never attached) is finished by recover once the
 * gate is old enough, and left alone before that and afterwards.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BatchSpec, batchGateJobId, } from '@kvfold/contract';
import { BatchRegistry, createQueues, createRedis, redisOptionsFromUrl, writeBatchRecord } from '@kvfold/jobs';
import type { KvfoldQueues, Redis } from '@kvfold/jobs';
import { batchRecordOf, dropTestQueues } from '@kvfold/jobs/testing';
import { FsObjectStore } from '@kvfold/storage';
import { enqueueBatch } from './enqueue.ts';
import { planBatch } from './plan-batch.ts';
import { ingest } from './ingest.ts';
import { recoverBatches } from './requeue.ts';
import { tempDir, writeTree } from './test-fixtures.ts';
import { uploadCorpus } from './upload.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('recover: an enqueue cut off between chunks', () => {
  let dir = '';
  let cleanup = async () => {};
  let redis: Redis;
  let queues: KvfoldQueues;
  let registry: BatchRegistry;
  const prefix = `{test-${randomUUID()}}`;

  before(async () => {
    ({ dir, cleanup } = await tempDir());
    redis = createRedis(REDIS_URL);
    queues = createQueues(redisOptionsFromUrl(REDIS_URL), prefix);
    registry = new BatchRegistry(redis, { prefix });
  });
  after(async () => {
    await dropTestQueues(queues, redis);
    await redis.quit();
    await cleanup();
  });

  it('is finished by recover once its gate is stale: the rest attached, the gate gone, nothing twice', async () => {
    const store = new FsObjectStore(join(dir, 'store'));
    await writeTree(join(dir, 'corpus'), Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`doc-${i}.txt`, `document number ${i}\n`.repeat(i + 1)])));
    const { index, indexKey } = await uploadCorpus(store, ingest([join(dir, 'corpus')]));
    const spec = BatchSpec.parse({ corpus: [indexKey], model: 'file:///models/tiny', queries: ['q?'] });
    const record = batchRecordOf(spec, index, indexKey);
    await writeBatchRecord(store, record);
    await registry.create(record, 'queued');
    // The documents queue refuses the second chunk, as if the enqueuing process died there.
    const cut = { ...queues, documents: Object.create(queues.documents, { addBulk: { value: async () => Promise.reject(new Error('cut off')) } }) };
    await assert.rejects(enqueueBatch(cut, planBatch(spec, index), { chunk: 2 }), /cut off/);
    const attached = async () => (await queues.documents.getJobs(['prioritized', 'waiting'])).filter((j) => j.data.batchId === record.id).length;
    assert.equal(await attached(), 2);

    // A gate younger than staleGateMs may be an enqueue still running: left alone.
    assert.deepEqual(await recoverBatches({ store, queues, registry, staleGateMs: 60_000 }), { rebuilt: 0, requeued: [] });
    assert.ok(await queues.batches.getJob(batchGateJobId(record.id)));

    const report = await recoverBatches({ store, queues, registry, staleGateMs: 0 });
    assert.deepEqual(report, { rebuilt: 0, requeued: [{ id: record.id, state: 'queued', requeued: 3 }] });
    assert.equal(await queues.batches.getJob(batchGateJobId(record.id)), undefined, 'the gate is gone');
    assert.equal(await attached(), 5);
    assert.equal(await (await queues.batches.getJob(record.id))?.getState(), 'waiting-children');

    assert.deepEqual(await recoverBatches({ store, queues, registry, staleGateMs: 0 }), { rebuilt: 0, requeued: [] }, 'a whole batch is left alone');
  });
});
