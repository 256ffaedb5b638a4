import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchSpec } from './batch-spec.ts';
import { PRIORITY_LIMIT, deriveBatchId, documentJobId, priorityForLength, stableStringify } from './ids.ts';

const corpusA = 'a'.repeat(64);
const corpusB = 'b'.repeat(64);
const spec = BatchSpec.parse({ corpus: ['s3://bucket/corpora/x/index.json'], model: 'file:///m', queries: ['q'] });

describe('ids', () => {
  it('stableStringify ignores key order and undefined values', () => {
    assert.equal(stableStringify({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
    assert.equal(stableStringify({ a: 1, b: 2 }), stableStringify({ b: 2, a: 1 }));
  });

  it('derives the same batch id for the same corpora and spec', () => {
    const first = deriveBatchId([corpusA, corpusB], spec);
    assert.match(first, /^b[0-9a-f]{32}$/);
    assert.equal(deriveBatchId([corpusB, corpusA], BatchSpec.parse({ ...spec })), first);
    // The corpus refs do not matter, only the content ids.
    assert.equal(deriveBatchId([corpusA, corpusB], { ...spec, corpus: ['file:///elsewhere/index.json'] }), first);
  });

  it('changes the batch id when the content or a setting changes', () => {
    const id = deriveBatchId([corpusA], spec);
    assert.notEqual(deriveBatchId([corpusB], spec), id);
    assert.notEqual(deriveBatchId([corpusA], { ...spec, chunkSize: 512 }), id);
    assert.notEqual(deriveBatchId([corpusA], { ...spec, queries: ['other'] }), id);
  });

  it('document job ids join batch and document and hold no colon', () => {
    const id = documentJobId('b0123', 'f'.repeat(64));
    assert.equal(id, `b0123-${'f'.repeat(64)}`);
    assert.equal(id.includes(':'), false);
  });

  it('gives longer documents smaller (earlier) priorities inside 1..2^21-1', () => {
    assert.equal(PRIORITY_LIMIT, 2097151);
    assert.equal(priorityForLength(0), PRIORITY_LIMIT);
    assert.ok(priorityForLength(1_000_000) < priorityForLength(10_000));
    assert.equal(priorityForLength(10 ** 12), 1);
    assert.equal(priorityForLength(-5), PRIORITY_LIMIT);
    assert.equal(priorityForLength(5000, 1), PRIORITY_LIMIT - 5000);
  });
});
