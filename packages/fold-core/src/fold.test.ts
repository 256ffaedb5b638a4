/**
 * The fold loop against the pure positional decoder (test-models.ts): positions continue, the
 * cache grows by each chunk in place, a resumed fold equals an uninterrupted one, questions rewind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fold, foldAll } from './fold.ts';
import { generate, generationRows } from './generate.ts';
import type { HostKvCache } from './host-kv-cache.ts';
import { POSITIONAL_VOCAB as VOCAB, positionalModel } from './test-models.ts';

const doc = Int32Array.from({ length: 23 }, (_, i) => (i * 5) % VOCAB);

test('positions continue and the cache grows by each chunk, in one preallocated buffer', async () => {
  const model = positionalModel();
  const cache = (await model.createCache({ capacity: doc.length })) as HostKvCache;
  const seen: number[] = [];
  for await (const s of fold(model, cache, doc, { chunkSize: 5 })) {
    seen.push(s.kvLength);
    assert.equal(cache.nextPosition, s.tokens);
    const keys = cache.buffer.layer(0).key;
    for (let r = 0; r < cache.length; r++) assert.equal(keys[r * 2], r, `row ${r} holds position ${r}`);
  }
  assert.deepEqual(seen, [5, 10, 15, 20, 23]);
  assert.equal(cache.capacity, 23, 'no growth past the reserved rows');
  assert.equal(cache.buffer.generation, 1, 'allocated once');
});

test('a fold stopped at a step and resumed equals an uninterrupted one', async () => {
  const model = positionalModel();
  const whole = await model.createCache({ capacity: 0 });
  const all = await foldAll(model, whole, doc, { chunkSize: 4, nll: true });
  const part = await model.createCache({ capacity: 0 });
  let lastLogits: Float32Array | undefined;
  for await (const s of fold(model, part, doc, { chunkSize: 4, nll: true })) {
    lastLogits = s.lastLogits;
    if (s.step === 3) break;
  }
  // A resume fills a fresh cache with the rows of step 3 (as a checkpoint would) and continues.
  const resumed = await model.createCache({ capacity: 0 });
  await resumed.append(await part.read(0, part.length), part.mark());
  const rest = await foldAll(model, resumed, doc, { chunkSize: 4, nll: true, from: { step: 3, ...(lastLogits ? { lastLogits } : {}) } });
  assert.deepEqual(await resumed.read(0, resumed.length), await whole.read(0, whole.length));
  assert.deepEqual(
    rest.steps.map((s) => s.nll),
    all.steps.slice(3).map((s) => s.nll),
  );
  assert.deepEqual(rest.lastLogits, all.lastLogits);
});

test('per-chunk NLL scores each token given everything before it; a chunk with nothing to score has no NLL', async () => {
  const model = positionalModel();
  const { steps } = await foldAll(model, await model.createCache({ capacity: 0 }), doc, { chunkSize: 10, nll: true });
  assert.deepEqual(
    steps.map((s) => s.nllTokens),
    [9, 10, 3],
  );
  for (const s of steps) assert.ok(Number.isFinite(s.nll));
  const ones = await foldAll(model, await model.createCache({ capacity: 0 }), doc.subarray(0, 3), { chunkSize: 1, nll: true });
  assert.deepEqual(
    ones.steps.map((s) => [s.nllTokens, s.nll === undefined]),
    [
      [0, true],
      [1, false],
      [1, false],
    ],
  );
});

test('every question reads the same folded cache and leaves it as it was', async () => {
  const model = positionalModel();
  const cache = await model.createCache({ capacity: doc.length + generationRows(2, 4) });
  await foldAll(model, cache, doc, { chunkSize: 6 });
  const folded = await cache.read(0, cache.length);
  const a = await generate(model, cache, Int32Array.of(1, 2), { maxNewTokens: 4 });
  const b = await generate(model, cache, Int32Array.of(3, 4), { maxNewTokens: 4 });
  // After 23 + 2 tokens, token 25's logits peak at (25 + 0) % 8 ... each next token sees one more.
  assert.deepEqual(a.tokenIds, [(23 + 2) % 8, (23 + 3) % 8, (23 + 4) % 8, (23 + 5) % 8]);
  assert.deepEqual(b.tokenIds, a.tokenIds);
  assert.equal(cache.length, 23);
  assert.equal(cache.nextPosition, 23);
  assert.deepEqual(await cache.read(0, cache.length), folded);
  assert.equal(cache.capacity, 23 + generationRows(2, 4), 'the answers fit the reserved rows');
  const stopped = await generate(model, cache, Int32Array.of(1, 2), { maxNewTokens: 4, stopTokens: [(23 + 4) % 8] });
  assert.deepEqual(stopped, { tokenIds: [1, 2], stopReason: 'stop-token' });
  assert.equal(cache.length, 23);
});

test('the last generated token is not fed back', async () => {
  const model = positionalModel();
  const cache = await model.createCache({ capacity: 0 });
  await foldAll(model, cache, doc, { chunkSize: 23 });
  model.calls.length = 0;
  await generate(model, cache, Int32Array.of(1, 2, 3), { maxNewTokens: 3 });
  assert.deepEqual(
    model.calls.map((c) => c.tokens),
    [3, 1, 1],
  );
  assert.equal(model.calls.reduce((n, c) => n + c.tokens, 0), generationRows(3, 3));
});

test('resuming past the end, or from a cache of another step, is refused', async () => {
  const model = positionalModel();
  const cache = await model.createCache({ capacity: 0 });
  await foldAll(model, cache, doc, { chunkSize: 6 });
  await assert.rejects(foldAll(model, cache, doc, { chunkSize: 6, from: { step: 9 } }), /cannot resume at step 9: the fold has 4 steps/);
  await assert.rejects(foldAll(model, cache, doc, { chunkSize: 6, from: { step: 2 } }), /the cache has read 23 tokens, but step 2 of this fold follows 12/);
  await assert.rejects(foldAll(model, cache, doc, { chunkSize: 6 }), /start from an empty cache/);
});
