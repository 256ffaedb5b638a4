import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DocumentResult, ResultLine, batchResultsKey, batchSummaryKey, documentResultKey } from '@kvfold/contract';
import { FsObjectStore } from '@kvfold/storage';
import { finalizeBatch } from './finalize-batch.ts';

const batchId = `b${'7'.repeat(32)}`;
const doc = (c: string) => c.repeat(64);

function result(docId: string, status: 'completed' | 'failed'): DocumentResult {
  return DocumentResult.parse({
    batchId,
    docId,
    paths: [`${docId.slice(0, 4)}.txt`],
    status,
    tokens: 100,
    steps: 4,
    chunkSize: 32,
    timings: { loadMs: 1, foldMs: 10, generateMs: 2, totalMs: 13, tokensPerSecond: 10000 },
    kvBytes: 4096,
    answers: [{ query: 'q', text: 'a', tokenIds: [1] }],
    resumedFromStep: 0,
    checkpoint: { segments: 1, bytes: 4096 },
    attempts: 1,
    ...(status === 'failed' ? { error: { code: 'KVF_TOO_LONG', message: 'document is too long' } } : {}),
  });
}

describe('finalizeBatch (FsObjectStore)', () => {
  let dir = '';
  let store: FsObjectStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kvfold-finalize-'));
    store = new FsObjectStore(dir);
    const put = (docId: string, body: string) => store.put(documentResultKey(batchId, docId), new Uint8Array(Buffer.from(body)));
    await put(doc('c'), JSON.stringify(result(doc('c'), 'completed'), null, 2));
    await put(doc('a'), JSON.stringify(result(doc('a'), 'completed')));
    await put(doc('b'), JSON.stringify(result(doc('b'), 'failed')));
    await put(doc('e'), '{"not": "a result"}');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes one line per document in docId order, failed and missing ones with their error', async () => {
    const ids = [doc('f'), doc('c'), doc('a'), doc('d'), doc('b'), doc('e'), doc('a')];
    const out = await finalizeBatch({
      store,
      batchId,
      documentIds: ids,
      failures: { [doc('d')]: 'worker crashed twice' },
      cancelled: [doc('f')],
    });
    assert.equal(out.key, batchResultsKey(batchId));
    assert.deepEqual(
      { ...out, bytes: 0 },
      {
        key: out.key,
        documents: 6,
        completed: 2,
        failed: 3,
        cancelled: 1,
        missing: 2,
        bytes: 0,
        tokens: 300,
        // The lines without a stored result, which the worker counts at finalize.
        stubs: [
          { docId: doc('d'), status: 'failed' },
          { docId: doc('e'), status: 'failed' },
          { docId: doc('f'), status: 'cancelled' },
        ],
      },
    );
    // Three results of 100 tokens (two completed, one failed); the summary lets a rebuild skip the results.
    assert.deepEqual(JSON.parse(Buffer.from(await store.getBytes(batchSummaryKey(batchId))).toString('utf8')), { documents: 6, completed: 2, failed: 3, cancelled: 1, tokens: 300 });
    const text = Buffer.from(await store.getBytes(out.key)).toString('utf8');
    assert.equal(Buffer.byteLength(text), out.bytes);
    assert.ok(text.endsWith('\n'));
    const lines = text.trimEnd().split('\n').map((l) => ResultLine.parse(JSON.parse(l)));
    assert.deepEqual(lines.map((l) => l.docId), ['a', 'b', 'c', 'd', 'e', 'f'].map(doc));
    assert.deepEqual(lines.map((l) => l.status), ['completed', 'failed', 'completed', 'failed', 'failed', 'cancelled']);
    assert.equal(lines[1]?.error?.code, 'KVF_TOO_LONG');
    assert.deepEqual(lines[3]?.error, { code: 'KVF_RESULT_MISSING', message: `document ${doc('d')} has no result: worker crashed twice` });
    assert.equal(lines[4]?.error?.code, 'KVF_RESULT_INVALID');
    assert.equal(lines[5]?.error?.code, 'KVF_BATCH_CANCELLED');
    assert.deepEqual(lines[2], result(doc('c'), 'completed'), 'a pretty-printed result becomes one line, unchanged');
  });

  it('rewrites the same file when run again', async () => {
    const first = await store.getBytes(batchResultsKey(batchId));
    await finalizeBatch({ store, batchId, documentIds: [doc('a'), doc('b'), doc('c'), doc('d'), doc('e'), doc('f')], failures: { [doc('d')]: 'worker crashed twice' }, cancelled: [doc('f')] });
    assert.deepEqual(await store.getBytes(batchResultsKey(batchId)), first);
  });
});
