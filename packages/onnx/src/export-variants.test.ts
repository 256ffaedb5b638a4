/**
 * Every export shape folds exactly: without position_ids, with an untied lm_head, with a float16
 * cache, with plain MatMul/Softmax attention over one KV head or several. Each runs its own fold
 * graph (past fed as the whole buffer, its first rows, or a slice of it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recallSpec } from '@kvfold/model-zoo';
import { loadModel } from './index.ts';
import { cacheDiff, foldLogits, maxAbsDiff, modelFolder, tinyLlamaFolder } from './test-models.ts';

const TOLERANCE = 1e-4;
const TEXT = 'A folder exported without position_ids derives each position from the cache length. '.repeat(3);

async function logitsOf(dir: string, chunkSize: number): Promise<Float32Array> {
  const m = await loadModel(dir);
  try {
    return (await foldLogits(m.decoder, m.tokenizer.encodeDocument(TEXT), chunkSize)).logits;
  } finally {
    await m.close();
  }
}

test('an export without position_ids is discovered and folds to the single-pass logits of the full export', async () => {
  const without = await tinyLlamaFolder('no-position-ids', {}, { positionIds: false });
  const m = await loadModel(without);
  assert.equal(m.decoder.names.positionIds, null);
  await m.close();
  const reference = await logitsOf(await tinyLlamaFolder('with-position-ids'), 1000);
  assert.ok(maxAbsDiff(await logitsOf(without, 13), reference) <= TOLERANCE);
  assert.ok(maxAbsDiff(await logitsOf(without, 1000), reference) <= TOLERANCE);
});

test('an untied lm_head folds exactly and differs from the tied model', async () => {
  const untied = await tinyLlamaFolder('untied', { untied: true });
  const single = await logitsOf(untied, 1000);
  assert.ok(maxAbsDiff(await logitsOf(untied, 9), single) <= TOLERANCE);
  const tied = await logitsOf(await tinyLlamaFolder('tied'), 1000);
  assert.ok(maxAbsDiff(single, tied) > 0.1);
});

for (const positionIds of [true, false]) {
  test(`plain MatMul/Softmax attention over two KV heads (${positionIds ? 'with' : 'without'} position_ids) folds exactly, its past sliced from the cache buffer`, async () => {
    const dir = await tinyLlamaFolder(`matmul-${positionIds}`, {}, { attention: 'matmul', positionIds });
    const m = await loadModel(dir);
    try {
      assert.match(m.decoder.planSummary, /Concat attention, .* past fed as sliced/);
      const tokens = m.tokenizer.encodeDocument(TEXT);
      const single = await foldLogits(m.decoder, tokens, tokens.length);
      const folded = await foldLogits(m.decoder, tokens, 11);
      assert.ok(maxAbsDiff(folded.logits, single.logits) <= TOLERANCE);
      assert.ok((await cacheDiff(folded.cache, single.cache)) <= TOLERANCE);
      // The same weights under GroupQueryAttention give the same logits.
      assert.ok(maxAbsDiff(single.logits, await logitsOf(await tinyLlamaFolder(`gqa-${positionIds}`, {}, { positionIds }), 1000)) <= TOLERANCE);
    } finally {
      await m.close();
    }
  });
}

test('one KV head under MatMul attention (recall) feeds the cache buffer’s first rows and folds exactly', async () => {
  const m = await loadModel(await modelFolder('recall', recallSpec()));
  try {
    assert.match(m.decoder.planSummary, /Concat attention, .* past fed as prefix/);
    const tokens = m.tokenizer.encodeDocument(Array.from({ length: 400 }, (_, i) => `f${(i * 7) % 60}`).join(' '));
    const single = await foldLogits(m.decoder, tokens, tokens.length);
    const folded = await foldLogits(m.decoder, tokens, 37);
    assert.ok(maxAbsDiff(folded.logits, single.logits) <= TOLERANCE);
    assert.ok((await cacheDiff(folded.cache, single.cache)) <= TOLERANCE);
  } finally {
    await m.close();
  }
});

test('a float16 KV cache is discovered from the session, carried as half bits, and folds to its single pass', async () => {
  const dir = await tinyLlamaFolder('kv-f16', {}, { kvDtype: 'float16' });
  const m = await loadModel(dir);
  try {
    assert.equal(m.decoder.layout.dtype, 'float16');
    const tokens = m.tokenizer.encodeDocument(TEXT);
    const single = await foldLogits(m.decoder, tokens, tokens.length);
    const folded = await foldLogits(m.decoder, tokens, 11);
    const rows = await folded.cache.read(0, folded.cache.length);
    assert.ok(rows.layers[0]?.key instanceof Uint16Array);
    assert.deepEqual(rows.layers[1]?.value, (await single.cache.read(0, single.cache.length)).layers[1]?.value);
    assert.ok(maxAbsDiff(folded.logits, single.logits) <= TOLERANCE);
    // Half-precision keys change the logits a little against the float32 cache, but not a lot.
    const f32 = await logitsOf(await tinyLlamaFolder('kv-f32-ref'), 1000);
    const drift = maxAbsDiff(single.logits, f32);
    assert.ok(drift > 0 && drift < 0.1, `float16 vs float32 cache: max logit difference ${drift}`);
  } finally {
    await m.close();
  }
});
