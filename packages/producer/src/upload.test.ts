import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FsObjectStore } from '@kvfold/storage';
import { makeDocument } from './document.ts';
import { ProducerError } from './errors.ts';
import { ingest } from './ingest.ts';
import { readCorpusIndex, readDocument } from './read-corpus.ts';
import { tempDir, writeTree } from './test-fixtures.ts';
import { uploadCorpus } from './upload.ts';

describe('uploadCorpus', () => {
  let dir = '';
  let cleanup = async () => {};
  let store: FsObjectStore;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    store = new FsObjectStore(join(dir, 'store'));
    const files: Record<string, string> = {};
    for (let i = 0; i < 12; i++) files[`f${String(i).padStart(2, '0')}.txt`] = `document ${i}\n${'x'.repeat(50 + i * 10)}\n`;
    files['dup.txt'] = files['f03.txt'] as string;
    await writeTree(join(dir, 'corpus'), files);
  });
  after(() => cleanup());

  it('uploads capped shards and an index that round-trips through the store', async () => {
    const run = ingest([join(dir, 'corpus')]);
    const result = await uploadCorpus(store, run, { shardBytes: 300, spoolDir: dir });
    assert.equal(result.documents, 12);
    assert.equal(result.duplicates, 1);
    assert.equal(result.report?.documents, 13);
    assert.equal(result.indexKey, `corpora/${result.corpusId}/index.json`);

    const index = await readCorpusIndex(store, result.indexKey);
    assert.deepEqual(index, result.index);
    assert.ok(index.shards.length > 3);
    for (const shard of index.shards) {
      const info = await store.head(shard.key);
      assert.equal(info?.size, shard.bytes);
      // A shard only exceeds the cap when it holds a single oversized document.
      const held = index.documents.filter((d) => d.shard.key === shard.key);
      assert.ok(shard.bytes <= 300 || held.length === 1);
    }
    const dup = index.documents.find((d) => d.paths.includes('corpus/dup.txt'));
    assert.deepEqual(dup?.paths, ['corpus/dup.txt', 'corpus/f03.txt']);
    for (const doc of index.documents) {
      const text = await readDocument(store, doc.shard, doc.sha256);
      assert.equal(makeDocument('x', doc.paths, text).docId, doc.docId);
    }
  });

  it('is idempotent: the same corpus gets the same id and uploads no shard twice', async () => {
    const first = await uploadCorpus(store, ingest([join(dir, 'corpus')]), { shardBytes: 300 });
    const second = await uploadCorpus(store, ingest([join(dir, 'corpus')]), { shardBytes: 300 });
    assert.equal(second.corpusId, first.corpusId);
    assert.equal(second.uploadedShards, 0);
  });

  it('readDocument refuses bytes that do not hash to the document id', async () => {
    const result = await uploadCorpus(store, ingest([join(dir, 'corpus')]), { shardBytes: 300 });
    const doc = result.index.documents[1];
    assert.ok(doc);
    const shifted = { ...doc.shard, offset: doc.shard.offset + 1, length: doc.shard.length - 1 };
    await assert.rejects(readDocument(store, shifted, doc.sha256), (err: unknown) => {
      assert.ok(err instanceof ProducerError);
      assert.equal(err.code, 'KVF_CORPUS_DIGEST_MISMATCH');
      assert.match(err.message, /re-upload the corpus/);
      return true;
    });
  });

  it('refuses to upload an empty corpus', async () => {
    await writeTree(join(dir, 'empty'), { 'a.bin': new Uint8Array([0, 1, 2, 0]) });
    await assert.rejects(uploadCorpus(store, ingest([join(dir, 'empty')])), (err: unknown) => err instanceof ProducerError && err.code === 'KVF_CORPUS_NO_DOCUMENTS');
  });
});
