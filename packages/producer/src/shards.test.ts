import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeDocument } from './document.ts';
import { ShardPacker, buildShards, corpusIdOf, shardKey } from './shards.ts';
import { collect } from './test-fixtures.ts';

const doc = (path: string, size: number, fill = path) => makeDocument('in', [path], fill.repeat(size).slice(0, size));

describe('shards', () => {
  it('respects the cap, keeps order and records offsets', async () => {
    const docs = [doc('a', 40), doc('b', 50), doc('c', 30), doc('d', 100), doc('e', 10)];
    const shards = await collect(buildShards(docs, { shardBytes: 100 }));
    assert.deepEqual(
      shards.map((s) => s.documents.map((d) => [d.paths[0], d.shard, d.offset, d.length])),
      [
        [['a', 0, 0, 40], ['b', 0, 40, 50]],
        [['c', 1, 0, 30]],
        [['d', 2, 0, 100]],
        [['e', 3, 0, 10]],
      ],
    );
    for (const shard of shards) {
      assert.ok(shard.bytes.byteLength <= 100);
      for (const d of shard.documents) {
        const slice = Buffer.from(shard.bytes.subarray(d.offset, d.offset + d.length)).toString('utf8');
        assert.equal(slice, docs.find((x) => x.docId === d.docId)?.text);
      }
    }
  });

  it('gives a document larger than the cap a shard of its own', async () => {
    const shards = await collect(buildShards([doc('small', 10), doc('huge', 500), doc('tail', 10)], { shardBytes: 100 }));
    assert.deepEqual(shards.map((s) => s.bytes.byteLength), [10, 500, 10]);
  });

  it('stores identical documents once and merges their paths', () => {
    const packer = new ShardPacker(1000);
    packer.add(makeDocument('in', ['x/one.txt'], 'same'));
    packer.add(makeDocument('in', ['y/two.txt'], 'same'));
    packer.add(makeDocument('in', ['z.txt'], 'other'));
    const last = packer.finish();
    assert.equal(packer.duplicates, 1);
    assert.deepEqual(packer.documents.map((d) => d.paths), [['x/one.txt', 'y/two.txt'], ['z.txt']]);
    assert.equal(Buffer.from(last?.bytes ?? []).toString(), 'sameother');
  });

  it('derives a stable corpus id that changes with content, paths and cap', () => {
    const docs = [{ docId: 'a'.repeat(64), paths: ['p'] }];
    const id = corpusIdOf(docs, 100, 'file');
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(corpusIdOf([{ docId: 'a'.repeat(64), paths: ['p'] }], 100, 'file'), id);
    assert.notEqual(corpusIdOf([{ docId: 'a'.repeat(64), paths: ['q'] }], 100, 'file'), id);
    assert.notEqual(corpusIdOf(docs, 200, 'file'), id);
    assert.equal(shardKey(id, 7), `corpora/${id}/shards/00007.bin`);
  });
});
