/**
 * The store as the source of truth, through inject() on a private redis-server this file may
 * flush: a batch Redis lost still answers (its entry is rebuilt from the store), recover enqueues
 * again only what has no result, and cancel costs the same Redis round trips for 10 documents as
 * for 1,000.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_ENDED_TTL_S, createRedis, writeBatchSummary } from '@kvfold/jobs';
import { DocumentJob, batchResultsKey, documentResultKey } from '@kvfold/contract';
import type { BatchStatus } from '@kvfold/contract';
import type { Redis } from '@kvfold/jobs';
import { startPrivateRedis } from '@kvfold/jobs/testing';
import type { PrivateRedis } from '@kvfold/jobs/testing';
import { ingest, uploadCorpus } from '@kvfold/producer';
import { sampleResult, startTestApi } from './testing.ts';
import type { TestApi } from './testing.ts';

const spec = { model: 'file:///models/tiny', chunkSize: 64, queries: ['What is inside?'] };

describe('the store is the source of truth (inject, private redis-server, FsObjectStore)', () => {
  let redisServer: PrivateRedis;
  let api: TestApi;
  let admin: Redis;

  before(async () => {
    redisServer = await startPrivateRedis();
    api = await startTestApi({ redisUrl: redisServer.url });
    admin = createRedis(redisServer.url);
  });
  after(async () => {
    await api.close();
    admin.disconnect();
    await redisServer.stop();
  });

  /** A stored corpus of `n` small documents (a .jsonl, one document a line) and a batch over it; returns the batch id. */
  async function batchOf(n: number, tag: string): Promise<string> {
    const file = join(api.dir, `${tag}.jsonl`);
    await writeFile(file, Array.from({ length: n }, (_, i) => JSON.stringify({ path: `${tag}/${i}.txt`, text: `document ${i} of ${tag}\n` })).join('\n'));
    const { indexKey } = await uploadCorpus(api.store, ingest([file]));
    const res = await api.app.inject({ method: 'POST', url: '/v1/batches', headers: api.headers, payload: { ...spec, corpus: [indexKey] } });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.json().documents, n);
    return res.json().id;
  }

  const status = async (id: string): Promise<BatchStatus> => {
    const res = await api.app.inject({ method: 'GET', url: `/v1/batches/${id}`, headers: api.headers });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };

  it('after FLUSHALL a batch still answers (rebuilt from the store); recover enqueues again only its documents without a result', async () => {
    const id = await batchOf(3, 'flushed');
    const jobs = await api.queues.documents.getJobs(['prioritized', 'waiting']);
    const first = DocumentJob.parse(jobs[0]?.data);
    await api.store.put(documentResultKey(id, first.docId), new TextEncoder().encode(JSON.stringify(sampleResult(first))));

    assert.equal(await admin.flushall(), 'OK');
    const rebuilt = await status(id);
    assert.equal(rebuilt.state, 'in_progress');
    assert.deepEqual(rebuilt.counts, { total: 3, waiting: 2, active: 0, completed: 1, failed: 0, cancelled: 0 });
    assert.equal(rebuilt.progress.tokens, first.bytes);
    const results = await api.app.inject({ method: 'GET', url: `/v1/batches/${id}/results`, headers: api.headers });
    assert.equal(results.statusCode, 200);
    assert.equal(results.body.trimEnd().split('\n').length, 1);
    assert.equal(await api.queues.documents.count(), 0, 'the flush took the queue');

    const recover = await api.app.inject({ method: 'POST', url: '/v1/batches/recover', headers: api.headers });
    assert.equal(recover.statusCode, 202, recover.body);
    assert.deepEqual(recover.json().requeued, [{ id, state: 'queued', requeued: 2 }]);
    const waiting = (await api.queues.documents.getJobs(['prioritized', 'waiting'])).map((j) => DocumentJob.parse(j.data).docId);
    assert.equal(waiting.length, 2);
    assert.ok(!waiting.includes(first.docId), 'the document with a result is not enqueued again');
    assert.equal(await (await api.queues.batches.getJob(id))?.getState(), 'waiting-children');
    assert.deepEqual((await status(id)).counts, { total: 3, waiting: 2, active: 0, completed: 1, failed: 0, cancelled: 0 });

    const list = await api.app.inject({ method: 'GET', url: '/v1/batches', headers: api.headers });
    assert.deepEqual(list.json().batches.map((b: BatchStatus) => b.id), [id]);
    const again = await api.app.inject({ method: 'POST', url: '/v1/batches/recover', headers: api.headers });
    assert.deepEqual(again.json(), { rebuilt: 0, requeued: [] }, 'a second recover finds nothing lost');

    const running = await api.app.inject({ method: 'POST', url: `/v1/batches/${id}/retry`, headers: api.headers });
    assert.equal(running.statusCode, 409, running.body);
    assert.match(running.json().error.message, /retry it once it has ended/);
    const unknown = await api.app.inject({ method: 'POST', url: `/v1/batches/b${'0'.repeat(32)}/retry`, headers: api.headers });
    assert.equal(unknown.statusCode, 404);
    assert.match(unknown.json().error.message, /no batch b0{32} in file:/);
  });

  it('an ended batch Redis forgot is rebuilt from its summary, with no result read, and expires again', async () => {
    const id = await batchOf(2, 'ended');
    // What finalization leaves in the store: results.jsonl and its summary (the results are not needed).
    await api.store.put(batchResultsKey(id), new TextEncoder().encode('{"line":1}\n{"line":2}\n'));
    await writeBatchSummary(api.store, id, { documents: 2, completed: 1, failed: 1, cancelled: 0, tokens: 30 });
    await api.registry.delete(id);
    const rebuilt = await status(id);
    assert.equal(rebuilt.state, 'completed');
    assert.deepEqual(rebuilt.counts, { total: 2, waiting: 0, active: 0, completed: 1, failed: 1, cancelled: 0 });
    assert.equal(rebuilt.progress.tokens, 30);
    const ttl = await admin.ttl(api.registry.key(id));
    assert.ok(ttl > 0 && ttl <= DEFAULT_ENDED_TTL_S, `ttl ${ttl}`);
  });

  it('cancel costs the same Redis commands for 10 documents as for 1,000; waiting documents are removed and count as cancelled', async (t) => {
    const warm = await batchOf(3, 'warm-up');
    const small = await batchOf(10, 'small');
    const large = await batchOf(1000, 'large');
    const monitor = await admin.monitor();
    const seen: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') seen.push(args);
    });
    const marker = createRedis(redisServer.url);
    /** Commands clients sent (not those scripts ran) during one cancel request. */
    const cancelCost = async (id: string, n: number): Promise<number> => {
      const from = seen.length;
      const res = await api.app.inject({ method: 'POST', url: `/v1/batches/${id}/cancel`, headers: api.headers });
      assert.equal(res.statusCode, 202, res.body);
      assert.deepEqual(res.json(), { id, state: 'cancelled', removed: n });
      // MONITOR streams what ran in order: once our echo shows up, the request's commands have too.
      const tag = `end-of-cancel-${id}`;
      await marker.echo(tag);
      for (;;) {
        const at = seen.findIndex((args, i) => i >= from && args[0]?.toLowerCase() === 'echo' && args[1] === tag);
        if (at >= 0) return at - from;
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    try {
      await cancelCost(warm, 3); // loads the scripts, so both measured calls run the same EVALSHAs
      const smallCost = await cancelCost(small, 10);
      const largeCost = await cancelCost(large, 1000);
      assert.ok(smallCost > 0);
      assert.equal(largeCost, smallCost, `cancel sent ${smallCost} commands for 10 documents, ${largeCost} for 1,000`);
      t.diagnostic(`cancel: ${smallCost} client commands for 10 documents, ${largeCost} for 1,000`);
    } finally {
      marker.disconnect();
      monitor.disconnect();
    }
    const cancelled = await status(large);
    assert.equal(cancelled.state, 'cancelled');
    assert.deepEqual(cancelled.counts, { total: 1000, waiting: 0, active: 0, completed: 0, failed: 0, cancelled: 1000 });
    const left = (await api.queues.documents.getJobs(['prioritized', 'waiting', 'delayed'])).filter((j) => [warm, small, large].includes(j.data.batchId));
    assert.equal(left.length, 0, 'no document of a cancelled batch is left in the queue');
    assert.ok(await api.store.head(`batches/${large}/cancelled.json`), 'the store holds the cancel');
  });
});
