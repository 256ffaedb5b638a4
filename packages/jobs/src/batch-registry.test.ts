import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { BatchSpec } from '@kvfold/contract';
import { BatchRegistry, DEFAULT_ENDED_TTL_S } from './batch-registry.ts';
import type { BatchRecordInput } from '@kvfold/contract';
import { JobsError } from './errors.ts';
import { FoldMetrics } from './fold-metrics.ts';
import { createRedis } from './redis-client.ts';
import type { Redis } from './redis-client.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const batchId = `b${'1'.repeat(32)}`;
const docA = 'a'.repeat(64);
const docB = 'b'.repeat(64);

function sampleRecord(id = batchId): BatchRecordInput {
  return {
    id,
    spec: BatchSpec.parse({ corpus: ['corpora/c/index.json'], model: 'file:///m' }),
    createdAt: '2026-01-01T00:00:00.000Z',
    documents: 2,
    totalBytes: 300,
    corpusIds: ['c'.repeat(64)],
    corpus: ['corpora/c/index.json'],
    ingest: { files: 2, documents: 2, bytes: 300, ignored: 0, skipped: 0, refused: 0 },
  };
}

describe('BatchRegistry (real Redis)', () => {
  let redis: Redis;
  let prefix = '';
  let registry: BatchRegistry;

  before(() => {
    redis = createRedis(REDIS_URL);
  });
  after(async () => {
    await redis.quit();
  });
  beforeEach(() => {
    prefix = `{test-${randomUUID()}}`;
    registry = new BatchRegistry(redis, { prefix });
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
  });

  it('creates a batch once and reads it back under the queue prefix', async () => {
    const first = await registry.create(sampleRecord());
    assert.equal(first.created, true);
    assert.equal(first.entry.state, 'validating');
    assert.equal(first.entry.record.documents, 2);
    const again = await registry.create({ ...sampleRecord(), documents: 9 }, 'queued');
    assert.equal(again.created, false);
    assert.equal(again.entry.record.documents, 2);
    assert.equal(again.entry.state, 'validating');
    assert.equal(registry.key(batchId), `${prefix}:registry:batch:${batchId}`);
    assert.equal(await registry.get(`b${'9'.repeat(32)}`), null);
  });

  it('moves only along legal transitions', async () => {
    await registry.create(sampleRecord());
    assert.equal(await registry.setState(batchId, 'queued'), 'queued');
    assert.equal(await registry.setState(batchId, 'cancelled'), 'queued', 'queued cannot jump to cancelled');
    assert.equal(await registry.setState(batchId, 'in_progress'), 'in_progress');
    assert.equal(await registry.finish(batchId), 'completed');
    assert.equal(await registry.setState(batchId, 'in_progress'), 'completed', 'terminal stays terminal');
    await assert.rejects(registry.setState(`b${'9'.repeat(32)}`, 'queued'), (e: unknown) => e instanceof JobsError && e.code === 'KVF_BATCH_NOT_FOUND');
  });

  it('cancels: flag for workers, cancelling state, finish() ends cancelled, terminal batches untouched', async () => {
    await registry.create(sampleRecord(), 'queued');
    assert.equal(await registry.isCancelled(batchId), false);
    assert.equal(await registry.requestCancel(batchId), 'cancelling');
    assert.equal(await registry.requestCancel(batchId), 'cancelling');
    assert.equal(await registry.isCancelled(batchId), true);
    assert.ok((await registry.get(batchId))?.cancelRequestedAt);
    assert.equal(await registry.finish(batchId), 'cancelled');

    const other = `b${'2'.repeat(32)}`;
    await registry.create(sampleRecord(other), 'completed');
    assert.equal(await registry.requestCancel(other), 'completed');
    assert.equal(await registry.isCancelled(other), false);
  });

  it('counts each document once however often it is recorded', async () => {
    await registry.create(sampleRecord(), 'queued');
    assert.equal(await registry.recordDocumentDone(batchId, { docId: docA, status: 'completed', tokens: 40, bytes: 100 }), true);
    assert.equal(await registry.recordDocumentDone(batchId, { docId: docA, status: 'completed', tokens: 40, bytes: 100 }), false);
    assert.equal(await registry.recordDocumentDone(batchId, { docId: docB, status: 'removed', tokens: 0, bytes: 200 }), true);
    assert.deepEqual((await registry.get(batchId))?.counters, { completed: 1, failed: 0, cancelled: 0, removed: 1, tokens: 40, bytes: 300 });
    await assert.rejects(registry.recordDocumentDone(batchId, { docId: docA, status: 'completed', tokens: -1, bytes: 1 }), /tokens must be an integer >= 0/);
  });

  it('an ended batch drops its per-document set, keeps its counters and counts no late delivery', async () => {
    await registry.create(sampleRecord(), 'in_progress');
    await registry.recordDocumentDone(batchId, { docId: docA, status: 'completed', tokens: 40, bytes: 100 });
    assert.equal(await redis.exists(`${registry.key(batchId)}:docs`), 1);
    assert.equal(await registry.finish(batchId), 'completed');
    assert.equal(await redis.exists(`${registry.key(batchId)}:docs`), 0);
    assert.equal(await registry.recordDocumentDone(batchId, { docId: docA, status: 'completed', tokens: 40, bytes: 100 }), false);
    assert.equal(await registry.recordDocumentDone(batchId, { docId: docB, status: 'failed', tokens: 0, bytes: 200 }), false);
    assert.equal(await redis.exists(`${registry.key(batchId)}:docs`), 0);
    assert.deepEqual((await registry.get(batchId))?.counters, { completed: 1, failed: 0, cancelled: 0, removed: 0, tokens: 40, bytes: 100 });
  });

  it('an ended entry expires after endedTtlS (a week by default); a running one never does', async () => {
    await registry.create(sampleRecord(), 'in_progress');
    assert.equal(await redis.ttl(registry.key(batchId)), -1, 'no expiry while running');
    assert.equal(await registry.requestCancel(batchId), 'cancelling');
    assert.equal(await redis.ttl(registry.key(batchId)), -1);
    assert.equal(await registry.finish(batchId), 'cancelled');
    const ttl = await redis.ttl(registry.key(batchId));
    assert.ok(ttl > DEFAULT_ENDED_TTL_S - 60 && ttl <= DEFAULT_ENDED_TTL_S, `ttl ${ttl}`);

    const short = new BatchRegistry(redis, { prefix, endedTtlS: 120 });
    const other = `b${'2'.repeat(32)}`;
    await short.create(sampleRecord(other), 'in_progress');
    await short.recordDocumentDone(other, { docId: docA, status: 'completed', tokens: 1, bytes: 1 });
    assert.equal(await short.setState(other, 'completed'), 'completed');
    const ttl2 = await redis.ttl(short.key(other));
    assert.ok(ttl2 > 60 && ttl2 <= 120, `ttl ${ttl2}`);
    assert.equal(await redis.exists(`${short.key(other)}:docs`), 0, 'the per-document hash goes when the batch ends');
    assert.throws(() => new BatchRegistry(redis, { endedTtlS: 0 }), /endedTtlS must be an integer >= 1/);
  });

  it('restore writes a whole entry in one script: counters from the outcomes, the docs hash while running, an expiry once ended', async () => {
    const outcomes = new Map([
      [docA, { status: 'completed' as const, tokens: 40, bytes: 100 }],
      [docB, { status: 'failed' as const, tokens: 7, bytes: 200 }],
    ]);
    assert.equal(await registry.restore({ record: sampleRecord(), state: 'in_progress', outcomes }), true);
    const entry = await registry.get(batchId);
    assert.equal(entry?.state, 'in_progress');
    assert.deepEqual(entry?.counters, { completed: 1, failed: 1, cancelled: 0, removed: 0, tokens: 47, bytes: 300 });
    assert.equal(await registry.recordDocumentDone(batchId, { docId: docA, status: 'completed', tokens: 40, bytes: 100 }), false, 'a restored outcome is not counted again');
    assert.equal(await redis.ttl(registry.key(batchId)), -1);
    assert.deepEqual((await registry.list({ limit: 10 })).ids, [batchId]);

    assert.equal(await registry.restore({ record: sampleRecord(), state: 'queued', outcomes: new Map() }, { onlyIfAbsent: true }), false, 'an existing entry wins');
    assert.equal((await registry.get(batchId))?.state, 'in_progress');
    assert.equal(await registry.restore({ record: sampleRecord(), state: 'cancelled', cancelRequestedAt: '2026-01-02T00:00:00.000Z', outcomes }), true);
    assert.equal(await registry.isCancelled(batchId), true);
    assert.equal(await redis.exists(`${registry.key(batchId)}:docs`), 0);
    assert.ok((await redis.ttl(registry.key(batchId))) > 0);
  });

  it('lists batches newest first in pages whose cursors hold under ties and new arrivals; delete unlists', async () => {
    const id = (n: number) => `b${n.toString(16).padStart(32, '0')}`;
    const at = (n: number) => `2026-03-0${1 + Math.floor(n / 3)}T00:00:00.000Z`; // three batches per instant
    for (let n = 1; n <= 7; n++) await registry.create({ ...sampleRecord(id(n)), createdAt: at(n) });
    // Later instants first; within one instant, the larger id first.
    const newestFirst = [7, 6, 5, 4, 3, 2, 1].map(id);
    const first = await registry.list({ limit: 3 });
    assert.deepEqual(first.ids, newestFirst.slice(0, 3));
    assert.ok(first.nextCursor);
    await registry.create({ ...sampleRecord(id(8)), createdAt: '2026-04-01T00:00:00.000Z' }); // arrives between pages
    const seen = [...first.ids];
    let cursor: string | null = first.nextCursor;
    while (cursor) {
      const page = await registry.list({ limit: 3, after: cursor });
      seen.push(...page.ids);
      cursor = page.nextCursor;
    }
    assert.deepEqual(seen, newestFirst, 'every batch once, in order; the newcomer waits for page one');
    assert.deepEqual((await registry.list({ limit: 1 })).ids, [id(8)]);
    assert.deepEqual(await registry.list({ limit: 100, after: `${'0'.repeat(15)}:${id(1)}` }), { ids: [], nextCursor: null }, 'nothing is older than the epoch');

    await registry.delete(id(8));
    assert.deepEqual((await registry.list({ limit: 1 })).ids, [newestFirst[0]]);
    await assert.rejects(registry.list({ limit: 0 }), /limit must be an integer 1\.\.100, got 0/);
    await assert.rejects(registry.list({ limit: 5, after: 'page-2' }), /cursor "page-2" is not one this API gave out/);
  });
});

describe('FoldMetrics (real Redis)', () => {
  it('accumulates tokens, checkpoint bytes, documents and a cumulative step histogram', async () => {
    const redis = createRedis(REDIS_URL);
    const metrics = new FoldMetrics(redis, { prefix: `{test-${randomUUID()}}` });
    try {
      await metrics.recordStep(0.003, 32);
      await metrics.recordStep(0.2, 32);
      await metrics.recordStep(500, 10);
      await metrics.recordCheckpoint(4096);
      await metrics.recordDocument('completed');
      const snap = await metrics.read();
      assert.equal(snap.tokens, 74);
      assert.equal(snap.checkpointBytes, 4096);
      assert.equal(snap.steps.count, 3);
      assert.ok(Math.abs(snap.steps.sum - 500.203) < 1e-9);
      assert.equal(snap.steps.buckets.find((b) => b.le === '0.005')?.count, 1);
      assert.equal(snap.steps.buckets.find((b) => b.le === '0.25')?.count, 2);
      assert.equal(snap.steps.buckets.find((b) => b.le === '120')?.count, 2);
      assert.deepEqual(snap.steps.buckets.at(-1), { le: '+Inf', count: 3 });
      assert.deepEqual(snap.documents, { completed: 1 });
    } finally {
      await metrics.reset();
      await redis.quit();
    }
  });
});
