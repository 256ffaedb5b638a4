/** StreamingLLM on tiny-llama run by onnxruntime-node, acting on the session's cache in place, at every cache width. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createPolicy, ropeFrequencies } from '@kvfold/fold-core';
import { tinyLlamaSpec } from '@kvfold/model-zoo';
import { type LoadedModel, loadModel, readModelFolder, ropeInverseFrequencies } from './index.ts';
import { foldLogits, maxAbsDiff, modelFolder, tinyLlamaFolder } from './test-models.ts';

let model: LoadedModel;
let tokens: Int32Array;
let invFreq: Float64Array;

before(async () => {
  model = await loadModel(await tinyLlamaFolder('policies'));
  invFreq = ropeInverseFrequencies(model.folder);
  tokens = model.tokenizer.encodeDocument('Streaming keeps attention sinks and a recent window; int8 keeps everything, rounded. '.repeat(12)).slice(0, 1000);
});
after(() => model.close());

const streaming = (sink: number, window: number) => createPolicy({ kind: 'streaming', sink, window }, { invFreq });

test('streaming with a window that holds the whole document equals the full fold', async () => {
  const full = await foldLogits(model.decoder, tokens, 64);
  const s = await foldLogits(model.decoder, tokens, 64, { policy: streaming(4, 2000) });
  assert.equal(maxAbsDiff(full.logits, s.logits), 0);
});

test('streaming evicts in place: the cache stays within sink + window + one chunk, and the logits move once the document outgrows the window', async () => {
  const policy = streaming(4, 100);
  assert.equal(policy.rows(tokens.length, 32, 0), 136);
  const full = await foldLogits(model.decoder, tokens, 32);
  const r = await foldLogits(model.decoder, tokens, 32, { policy });
  assert.ok(r.steps.every((s) => s.kvLength <= 104));
  assert.deepEqual([r.cache.length, r.cache.tokensSeen, r.cache.nextPosition], [104, 1000, 104]);
  assert.equal(Math.max(...r.steps.map((s) => s.kvBytes)), 104 * 2 * 2 * 2 * 16 * 4);
  // Within the window the logits agree; past it, evicted context changes them.
  const vocab = model.decoder.layout.vocabSize;
  assert.equal(maxAbsDiff(r.logits.subarray(0, 104 * vocab), full.logits.subarray(0, 104 * vocab)), 0);
  assert.ok(maxAbsDiff(r.logits.subarray(900 * vocab), full.logits.subarray(900 * vocab)) > 0.01);
});

test('after eviction the kept keys sit at contiguous positions: layer 0 equals a single pass over the kept tokens', async () => {
  // Layer 0's keys depend only on token and position, so they can be recomputed exactly.
  const sink = 4;
  const window = 100;
  const r = await foldLogits(model.decoder, tokens, 32, { policy: streaming(sink, window) });
  const kept = new Int32Array([...tokens.slice(0, sink), ...tokens.slice(tokens.length - window)]);
  const single = await foldLogits(model.decoder, kept, kept.length);
  const [a, b] = [await r.cache.read(0, r.cache.length), await single.cache.read(0, single.cache.length)];
  const diff = maxAbsDiff(a.layers[0]?.key as Float32Array, b.layers[0]?.key as Float32Array);
  assert.ok(diff < 1e-4, `layer-0 keys after re-rotation differ by ${diff}`);
  assert.ok(maxAbsDiff(a.layers[0]?.value as Float32Array, b.layers[0]?.value as Float32Array) < 1e-5);
});

for (const kvDtype of ['float16', 'int8'] as const) {
  test(`a ${kvDtype} cache: streaming evicts and re-rotates at that width, close to the float32 fold`, async () => {
    const narrow = await loadModel(model.folder.dir, { kvDtype });
    try {
      const policy = () => streaming(4, 100);
      const wide = await foldLogits(model.decoder, tokens, 32, { policy: policy() });
      const r = await foldLogits(narrow.decoder, tokens, 32, { policy: policy() });
      assert.deepEqual([r.cache.length, r.cache.tokensSeen, r.cache.nextPosition], [104, 1000, 104]);
      assert.equal(r.cache.layout.dtype, kvDtype);
      const worst = maxAbsDiff(wide.logits, r.logits);
      assert.ok(worst > 0 && worst < (kvDtype === 'float16' ? 0.01 : 0.1), `max |logit difference| ${kvDtype} vs float32 under eviction: ${worst}`);
    } finally {
      await narrow.close();
    }
  });
}

test('streaming re-rotates with llama3-scaled frequencies: on a Llama 3.1-style model the kept keys equal a single pass over the kept tokens', async () => {
  const base = tinyLlamaSpec();
  const scaled = { ...base, config: { ...base.config, rope_theta: 500000, rope_scaling: { rope_type: 'llama3' as const, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } } };
  const m = await loadModel(await modelFolder('llama3-rope', scaled));
  try {
    const f = ropeInverseFrequencies(m.folder);
    const plain = ropeFrequencies(500000, 16);
    assert.ok(f.some((x, j) => x !== plain[j]), 'the scaling changes the low frequencies');
    const policy = createPolicy({ kind: 'streaming', sink: 4, window: 100 }, { invFreq: f });
    const r = await foldLogits(m.decoder, tokens, 32, { policy });
    const kept = new Int32Array([...tokens.slice(0, 4), ...tokens.slice(tokens.length - 100)]);
    const single = await foldLogits(m.decoder, kept, kept.length);
    const [a, b] = [await r.cache.read(0, r.cache.length), await single.cache.read(0, single.cache.length)];
    assert.ok(maxAbsDiff(a.layers[0]?.key as Float32Array, b.layers[0]?.key as Float32Array) < 1e-4);
  } finally {
    await m.close();
  }
});

test('a RoPE scaling the policies cannot re-rotate is refused by name', async () => {
  const base = tinyLlamaSpec();
  const dir = await modelFolder('yarn-rope', base);
  const folder = await readModelFolder(dir);
  const yarn = { ...folder, config: { ...folder.config, rope_scaling: { rope_type: 'yarn', factor: 4 } } };
  assert.throws(() => ropeInverseFrequencies(yarn), /rope_scaling \{"rope_type":"yarn","factor":4\}; re-rotating cached keys supports plain and llama3 RoPE/);
});
