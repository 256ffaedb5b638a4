import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { DocumentJob, batchGateJobId, deriveBatchId, documentJobId, BatchSpec } from '@kvfold/contract';
import { createQueues, redisOptionsFromUrl } from '@kvfold/jobs';
import type { CorpusIndex } from '@kvfold/contract';
import type { KvfoldQueues } from '@kvfold/jobs';
import { dropTestQueues } from '@kvfold/jobs/testing';
import { FsObjectStore } from '@kvfold/storage';
import { UnrecoverableError, Worker } from 'bullmq';
import { enqueueBatch } from './enqueue.ts';
import { planBatch } from './plan-batch.ts';
import { ingest } from './ingest.ts';
import { tempDir, writeTree } from './test-fixtures.ts';
import { uploadCorpus } from './upload.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('enqueueBatch (real Redis)', () => {
  let dir = '';
  let cleanup = async () => {};
  let index: CorpusIndex;
  let queues: KvfoldQueues;
  const spec = { corpus: ['corpora/x/index.json'], model: 'file:///models/tiny', queries: ['What is here?'] };

  before(async () => {
    ({ dir, cleanup } = await tempDir());
    await writeTree(join(dir, 'corpus'), {
      'short.txt': 'tiny\n',
      'medium.txt': `${'m'.repeat(2_000)}\n`,
      'long.txt': `${'l'.repeat(20_000)}\n`,
      'longest.txt': `${'z'.repeat(200_000)}\n`,
    });
    const store = new FsObjectStore(join(dir, 'store'));
    ({ index } = await uploadCorpus(store, ingest([join(dir, 'corpus')])));
  });
  after(() => cleanup());
  beforeEach(() => {
    queues = createQueues(redisOptionsFromUrl(REDIS_URL), `test-${randomUUID()}`);
  });
  afterEach(async () => {
    await dropTestQueues(queues);
  });

  it('creates one parent and one child per document with deterministic ids', async () => {
    const result = await enqueueBatch(queues, planBatch(spec, index));
    const batchId = deriveBatchId([index.corpusId], BatchSpec.parse(spec));
    assert.equal(result.batchId, batchId);
    assert.equal(result.parentJobId, batchId);
    assert.equal(result.added, 5);
    assert.deepEqual(new Set(result.jobIds), new Set(index.documents.map((d) => documentJobId(batchId, d.docId))));

    assert.equal(await queues.batches.getJobCountByTypes('waiting-children'), 1);
    assert.equal(await queues.documents.getJobCountByTypes('prioritized', 'waiting'), 4);
    const parent = await queues.batches.getJob(batchId);
    assert.equal(parent?.data.documents, 4);
    for (const id of result.jobIds) {
      const job = await queues.documents.getJob(id);
      assert.ok(job);
      const data = DocumentJob.parse(job.data);
      assert.equal(data.fold.queries[0], 'What is here?');
      assert.equal(job.opts.ignoreDependencyOnFailure, true);
      assert.equal(job.parentKey?.endsWith(`:${batchId}`), true);
    }
  });

  it('adds nothing when the same batch is enqueued again', async () => {
    const first = await enqueueBatch(queues, planBatch(spec, index));
    const second = await enqueueBatch(queues, planBatch(spec, index));
    assert.equal(second.added, 0);
    assert.equal(second.batchId, first.batchId);
    assert.deepEqual(second.jobIds, first.jobIds);
    assert.equal(await queues.documents.count(), 4);
    assert.equal(await queues.batches.getJobCountByTypes('waiting-children'), 1);
  });

  const takenOrder = async (specInput: typeof spec & { maxTokensPerDocument?: number }) => {
    const result = await enqueueBatch(queues, planBatch(specInput, index));
    const bytes = new Map(index.documents.map((d) => [documentJobId(result.batchId, d.docId), d.bytes]));
    const taken: number[] = [];
    const worker = new Worker(
      queues.documents.name,
      async (job) => {
        taken.push(bytes.get(job.id ?? '') ?? -1);
      },
      { connection: redisOptionsFromUrl(REDIS_URL), prefix: queues.prefix, concurrency: 1 },
    );
    try {
      await new Promise<void>((resolve) => {
        worker.on('completed', () => taken.length === 4 && resolve());
      });
    } finally {
      await worker.close();
    }
    return taken;
  };

  it('hands out longer documents first', async () => {
    const taken = await takenOrder({ ...spec, maxTokensPerDocument: 1_000_000 });
    assert.deepEqual(taken, [200_001, 20_001, 2_001, 5]);
  });

  it('hands out documents that may not fit the token limit last', async () => {
    // 200,001 bytes may hold more than 131,072 tokens (the default limit); the rest surely fit.
    const taken = await takenOrder(spec);
    assert.deepEqual(taken, [20_001, 2_001, 5, 200_001]);
  });

  it('a failed document does not fail the batch: the parent still becomes ready', async () => {
    const result = await enqueueBatch(queues, planBatch(spec, index), { attempts: 1 });
    const failing = result.jobIds[1];
    const worker = new Worker(
      queues.documents.name,
      async (job) => {
        if (job.id === failing) throw new UnrecoverableError('document too long');
        return { ok: true };
      },
      { connection: redisOptionsFromUrl(REDIS_URL), prefix: queues.prefix, concurrency: 1 },
    );
    try {
      let settled = 0;
      await new Promise<void>((resolve) => {
        const step = () => ++settled === 4 && resolve();
        worker.on('completed', step);
        worker.on('failed', step);
      });
    } finally {
      await worker.close();
    }
    const parent = await queues.batches.getJob(result.parentJobId);
    assert.ok(parent);
    assert.equal(await parent.getState(), 'waiting');
    const failures = await parent.getIgnoredChildrenFailures();
    assert.deepEqual(Object.values(failures), ['document too long']);
  });

  it('finished document jobs leave Redis after their retention; the batch still counts them and keeps the failures', async () => {
    // A retention of zero seconds: BullMQ removes each job as it finishes, so nothing has to wait for an age to pass.
    const result = await enqueueBatch(queues, planBatch(spec, index), { attempts: 1, keepCompletedS: 0, keepFailedS: 0 });
    const worker = new Worker(queues.documents.name, null, { connection: redisOptionsFromUrl(REDIS_URL), prefix: queues.prefix, autorun: false });
    const token = randomUUID();
    const finished: string[] = [];
    try {
      for (let n = 0; n < 4; n++) {
        const job = await worker.getNextJob(token);
        assert.ok(job);
        if (n % 2 === 0) await job.moveToCompleted({ n }, token, false);
        else await job.moveToFailed(new UnrecoverableError(`failure ${n}`), token, false);
        finished.push(job.id as string);
      }
    } finally {
      await worker.close();
    }
    for (const id of finished) assert.equal(await queues.documents.getJob(id), undefined, `${id} was removed`);
    const parent = await queues.batches.getJob(result.parentJobId);
    assert.ok(parent);
    assert.equal(await parent.getState(), 'waiting');
    const deps = await parent.getDependenciesCount();
    assert.deepEqual([deps.processed, deps.ignored], [2, 2]);
    assert.deepEqual(Object.values(await parent.getIgnoredChildrenFailures()).sort(), ['failure 1', 'failure 3']);
  });

  it('takes the retention of finished jobs from the options, a day (completed) and a week (failed) by default', async () => {
    const defaults = await enqueueBatch(queues, planBatch(spec, index));
    const job = await queues.documents.getJob(defaults.jobIds[0] as string);
    assert.deepEqual([job?.opts.removeOnComplete, job?.opts.removeOnFail], [{ age: 86_400 }, { age: 604_800 }]);
  });

  it('attaches a batch in chunks: the parent waits for every chunk, and an enqueue cut off between chunks resumes', async () => {
    // The documents queue refuses the second chunk, as if the enqueuing process died there.
    const cut = { ...queues, documents: Object.create(queues.documents, { addBulk: { value: async () => Promise.reject(new Error('cut off')) } }) };
    await assert.rejects(enqueueBatch(cut, planBatch(spec, index), { chunk: 2 }), /cut off/);
    const batchId = deriveBatchId([index.corpusId], BatchSpec.parse(spec));
    const parent = await queues.batches.getJob(batchId);
    assert.ok(parent);
    assert.ok(await queues.batches.getJob(batchGateJobId(batchId)), 'the gate holds the parent');
    // Fold the two documents of the first chunk: the parent still waits (two are not attached yet).
    const worker = new Worker(queues.documents.name, async () => ({ ok: true }), { connection: redisOptionsFromUrl(REDIS_URL), prefix: queues.prefix, concurrency: 1 });
    let done = 0;
    const waiters: { n: number; resolve: () => void }[] = [];
    worker.on('completed', () => {
      done += 1;
      for (const w of waiters) if (done >= w.n) w.resolve();
    });
    // Resolves once `n` jobs have completed, counting those that completed before it was asked.
    const folded = (n: number) => new Promise<void>((resolve) => (done >= n ? resolve() : waiters.push({ n, resolve })));
    try {
      await folded(2);
      assert.equal(await parent.getState(), 'waiting-children');
      assert.deepEqual(await parent.getDependenciesCount(), { processed: 2, unprocessed: 1, failed: 0, ignored: 0 });

      const resumed = await enqueueBatch(queues, planBatch(spec, index), { chunk: 2 });
      assert.ok(resumed.added > 0);
      await folded(4);
      assert.equal(await queues.batches.getJob(batchGateJobId(batchId)), undefined, 'the gate is gone');
      assert.equal(await parent.getState(), 'waiting');
      assert.deepEqual(await parent.getDependenciesCount(), { processed: 4, unprocessed: 0, failed: 0, ignored: 0 });
      assert.equal((await enqueueBatch(queues, planBatch(spec, index), { chunk: 2 })).added, 0, 'a whole batch is not enqueued again');
    } finally {
      await worker.close();
    }
  });
});
