/**
 * The fold is exact: on tiny-llama run by onnxruntime-node, folding chunk by chunk with the KV
 * cache as accumulator gives the single pass's logits, cache and greedy answers; and a step costs
 * what its new rows cost, however long the cache.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { foldAll, generate, kvRowBytes } from '@kvfold/fold-core';
import { type LoadedModel, loadModel } from './index.ts';
import { cacheDiff, foldLogits, maxAbsDiff, tinyLlamaFolder } from './test-models.ts';

const TOLERANCE = 1e-4;
const DOC =
  'KV-Fold reads a long document chunk by chunk. Each chunk attends to the cache of everything before it; its keys and values are appended and positions continue. ';

let model: LoadedModel;
let tokens: Int32Array;
let single: Awaited<ReturnType<typeof foldLogits>>;

before(async () => {
  model = await loadModel(await tinyLlamaFolder('tiny'));
  tokens = model.tokenizer.encodeDocument(DOC.repeat(2)).slice(0, 200); // 200 = 28*7 + 4 = 3*64 + 8: not divisible
  assert.equal(tokens.length, 200);
  single = await foldLogits(model.decoder, tokens, tokens.length);
});
after(() => model.close());

test('the session runs the fold graph in place: GroupQueryAttention over the cache buffer', () => {
  assert.equal(model.decoder.plan.kind, 'in-place');
  assert.match(model.decoder.planSummary, /GroupQueryAttention attention, .* past fed as capacity/);
});

for (const chunkSize of [1, 7, 64]) {
  test(`folded logits equal single-pass logits with chunks of ${chunkSize} over 200 tokens`, async () => {
    const r = await foldLogits(model.decoder, tokens, chunkSize);
    assert.equal(r.steps.length, Math.ceil(200 / chunkSize));
    const diff = maxAbsDiff(r.logits, single.logits);
    assert.ok(diff <= TOLERANCE, `max |folded - single| = ${diff}`);
    // The cache itself matches: every K/V row, rotated at its own position.
    assert.ok((await cacheDiff(r.cache, single.cache)) <= TOLERANCE);
    assert.equal(r.cache.capacity, 200, 'the cache never grew past the rows reserved');
  });
}

test('without the carried cache the same chunks give different logits (the comparison can fail)', async () => {
  const chunk = tokens.slice(64, 128);
  const alone = await foldLogits(model.decoder, chunk, 64);
  const offset = 64 * model.decoder.layout.vocabSize;
  const diff = maxAbsDiff(alone.logits, single.logits.subarray(offset, offset + chunk.length * model.decoder.layout.vocabSize));
  assert.ok(diff > 0.1, `a chunk read without its past should differ; max diff ${diff}`);
});

test('KV length and positions are right after every step', async () => {
  const r = await foldLogits(model.decoder, tokens, 64);
  assert.deepEqual(
    r.steps.map((s) => [s.step, s.tokens, s.kvLength]),
    [
      [1, 64, 64],
      [2, 128, 128],
      [3, 192, 192],
      [4, 200, 200],
    ],
  );
  assert.deepEqual([r.cache.length, r.cache.nextPosition, r.cache.tokensSeen], [200, 200, 200]);
  // A row folded at step 3 holds the key rotated for its absolute position: equal to the single pass's row.
  const row = async (c: typeof r.cache) => (await c.read(150, 151)).layers[0]?.key as Float32Array;
  assert.ok(maxAbsDiff(await row(r.cache), await row(single.cache)) <= TOLERANCE);
});

test('greedy answers after a fold equal the answers after one single pass, for every query from the same cache', async () => {
  const folded = await foldLogits(model.decoder, tokens, 7);
  const queries = [' What does each chunk attend to?', ' Positions', ' KV'];
  for (const q of queries) {
    const ids = model.tokenizer.encodeContinuation(q);
    const opts = { maxNewTokens: 12, stopTokens: model.stopTokens };
    const a = await generate(model.decoder, single.cache, ids, opts);
    const b = await generate(model.decoder, folded.cache, ids, opts);
    assert.deepEqual(b, a, `answer to ${JSON.stringify(q)}`);
  }
  assert.equal(folded.cache.length, 200, 'generation leaves the folded cache as it was');
  assert.ok((await cacheDiff(folded.cache, single.cache)) <= TOLERANCE);
});

test('a fold step and a generated token copy only their own rows, however long the cache', async () => {
  const { decoder } = model;
  const row = kvRowBytes(decoder.layout);
  const long = model.tokenizer.encodeDocument(DOC.repeat(40)).slice(0, 4096);
  const cache = await decoder.createCache({ capacity: long.length + 64 });
  const r = await foldAll(decoder, cache, long, { chunkSize: 64 });
  // Every step copies the same bytes: 64 tokens' ids and positions, 64 rows, the last logits.
  const perStep = new Set(r.steps.map((s) => s.copiedBytes));
  assert.equal(perStep.size, 1, `bytes copied per step: ${[...perStep].join(', ')}`);
  const [stepBytes] = perStep as Set<number>;
  assert.ok((stepBytes as number) < 64 * row + 64 * 16 + decoder.layout.vocabSize * 4 + 1, `${stepBytes} bytes for 64 rows of ${row}`);
  // So does every generated token: one row, one token, one row of logits. At 4096 cached rows the
  // cache is 4096 rows; each token copies about one.
  const before = { ...decoder.counters };
  const g = await generate(decoder, cache, model.tokenizer.encodeContinuation(' KV'), { maxNewTokens: 16 });
  const steps = decoder.counters.steps - before.steps;
  const perToken = (decoder.counters.copiedBytes - before.copiedBytes) / steps;
  assert.equal(g.tokenIds.length, 16);
  assert.ok(perToken < 4 * row + decoder.layout.vocabSize * 4, `${perToken.toFixed(0)} bytes per generated token; a row is ${row} and the cache ${cache.bytes}`);
  // What onnxruntime-node copies out per step is the logits and the new rows, not the cache.
  const outPerStep = (decoder.counters.outputBytes - before.outputBytes) / steps;
  assert.ok(outPerStep < 4 * row + decoder.layout.vocabSize * 16, `${outPerStep.toFixed(0)} output bytes per generated token`);
  await cache.release();
});

test('a fold step computes lm_head on its last position only, with the logits of a step that computes them all', async () => {
  const untied = await loadModel(await tinyLlamaFolder('tiny-untied-logits', { untied: true }));
  try {
    for (const m of [model, untied]) {
      const { decoder } = m;
      const vocab = decoder.layout.vocabSize;
      assert.ok(decoder.plan.kind === 'in-place' && decoder.plan.logitsAt !== null, `lm_head is sliced in ${m.folder.dir}`);
      const step = async (mode: 'all' | 'last') => {
        const cache = await decoder.createCache({ capacity: 128 });
        await decoder.step({ tokens: tokens.subarray(0, 64), cache, logits: 'none' });
        const before = decoder.counters.outputBytes;
        const out = await decoder.step({ tokens: tokens.subarray(64, 128), cache, logits: mode });
        await cache.release();
        return { logits: out.logits, outputBytes: decoder.counters.outputBytes - before };
      };
      const all = await step('all');
      const last = await step('last');
      assert.equal(all.logits.length, 64 * vocab);
      assert.equal(last.logits.length, vocab);
      assert.ok(maxAbsDiff(last.logits, all.logits.subarray(63 * vocab)) <= 1e-5, 'the last row, computed alone');
      // onnxruntime-node hands out one row of logits, not 64.
      assert.equal(all.outputBytes - last.outputBytes, 63 * vocab * 4);
    }
  } finally {
    await untied.close();
  }
});

test('the export run as it is (presents fetched) folds to the same logits, at a cost that grows with the cache', async () => {
  const plain = await loadModel(model.folder.dir, { foldGraph: 'standard' });
  try {
    assert.equal(plain.decoder.plan.kind, 'standard');
    const r = await foldLogits(plain.decoder, tokens, 64);
    assert.ok(maxAbsDiff(r.logits, single.logits) <= TOLERANCE);
    const copied = r.steps.map((s) => s.copiedBytes);
    // Each step repacks the whole past: its copies grow by one chunk's rows every step.
    const row = kvRowBytes(plain.decoder.layout);
    assert.deepEqual([(copied[1] as number) - (copied[0] as number), (copied[2] as number) - (copied[1] as number)], [64 * row, 64 * row], copied.join(', '));
  } finally {
    await plain.close();
  }
});

test('a cache of another model, a released cache, and a rewind past the rows held are refused', async () => {
  const other = await loadModel(model.folder.dir);
  try {
    const foreign = await other.decoder.createCache({ capacity: 8 });
    await assert.rejects(model.decoder.step({ tokens: Int32Array.of(1, 2), cache: foreign, logits: 'none' }), /a step runs on a cache created by the same model/);
  } finally {
    await other.close();
  }
  const c = await model.decoder.createCache({ capacity: 8 });
  await model.decoder.step({ tokens: Int32Array.of(1, 2, 3), cache: c, logits: 'none' });
  await assert.rejects(c.rewind({ length: 5, nextPosition: 5, tokensSeen: 5 }), { code: 'KVF_KV_REWIND', message: /cannot rewind a cache of 3 rows to 5 rows/ });
  await c.release();
  await assert.rejects(model.decoder.step({ tokens: Int32Array.of(1), cache: c, logits: 'none' }), { code: 'KVF_KV_RELEASED' });
});

test('a cache the machine cannot hold is refused naming its rows and bytes, before anything is allocated', async () => {
  await assert.rejects(model.decoder.createCache({ capacity: 2 ** 31 }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'KVF_KV_NO_MEMORY');
    assert.match(e.message, /a KV cache of 2147483648 rows needs 1\.0 TiB, but .* of memory is available; fold shorter documents/);
    return true;
  });
  const c = await model.decoder.createCache({ capacity: 4 });
  await assert.rejects(c.reserve(2 ** 31), { code: 'KVF_KV_NO_MEMORY' });
  assert.equal(c.capacity, 4, 'a refused growth leaves the cache as it was');
  await c.release();
});
