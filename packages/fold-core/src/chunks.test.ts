import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertChunkSize, chainDepth, chunkSpan, chunkSpans, positionIds, stepCount, tokensAfter } from './chunks.ts';

test('step count is the ceiling of tokens over chunk size', () => {
  assert.equal(stepCount(200, 64), 4);
  assert.equal(stepCount(256, 64), 4);
  assert.equal(stepCount(1, 64), 1);
  assert.equal(stepCount(0, 64), 0);
  assert.equal(stepCount(200, 1), 200);
});

test('chunk spans tile the document, the last one short', () => {
  const spans = chunkSpans(200, 64);
  assert.deepEqual(spans, [
    { start: 0, end: 64 },
    { start: 64, end: 128 },
    { start: 128, end: 192 },
    { start: 192, end: 200 },
  ]);
  const seven = chunkSpans(200, 7);
  assert.equal(seven.length, 29);
  assert.deepEqual(seven.at(-1), { start: 196, end: 200 });
  let next = 0;
  for (const s of seven) {
    assert.equal(s.start, next);
    next = s.end;
  }
  assert.equal(next, 200);
});

test('a step outside the fold is refused', () => {
  assert.throws(() => chunkSpan(4, 200, 64), /step 4 is outside a fold of 200 tokens/);
  assert.throws(() => chunkSpan(-1, 200, 64), RangeError);
});

test('chunk sizes below 1 or fractional are refused with the value named', () => {
  assert.throws(() => assertChunkSize(0), /chunk size must be an integer >= 1, got 0/);
  assert.throws(() => stepCount(10, 2.5), /got 2.5/);
  assert.throws(() => chunkSpans(10, -3), /got -3/);
});

test('tokens after k steps and positions continue from the cache', () => {
  assert.equal(tokensAfter(3, 200, 64), 192);
  assert.equal(tokensAfter(4, 200, 64), 200);
  assert.deepEqual(positionIds(192, 8), [192, 193, 194, 195, 196, 197, 198, 199]);
});

test('chain depth counts the steps after the one that reads a token', () => {
  // 128K tokens in chunks of 256: 512 steps; a token in the first chunk has 511 steps after it.
  assert.equal(chainDepth(0, 131072, 256), 511);
  assert.equal(chainDepth(131071, 131072, 256), 0);
  assert.equal(chainDepth(255, 131072, 256), 511);
  assert.equal(chainDepth(256, 131072, 256), 510);
});
