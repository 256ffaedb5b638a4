/** Exports without position_ids, and with an untied lm_head, fold exactly too. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foldAll } from '@kvfold/fold-core';
import { loadModel } from './index.ts';
import { tinyLlamaFolder } from './test-models.ts';

const TOLERANCE = 1e-4;
const TEXT = 'A folder exported without position_ids derives each position from the cache length. '.repeat(3);

async function logitsOf(dir: string, chunkSize: number): Promise<Float32Array> {
  const m = await loadModel(dir);
  try {
    const tokens = m.tokenizer.encodeDocument(TEXT);
    const r = await foldAll(m.decoder, tokens, { chunkSize, keepLogits: true });
    const parts = r.steps.map((s) => s.logits as Float32Array);
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  } finally {
    await m.close();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - (b[i] as number))), 0);
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

test('a float16 KV cache is discovered from the session, carried as half bits, and folds to its single pass', async () => {
  const dir = await tinyLlamaFolder('kv-f16', {}, { kvDtype: 'float16' });
  const m = await loadModel(dir);
  try {
    assert.equal(m.decoder.layout.dtype, 'float16');
    const tokens = m.tokenizer.encodeDocument(TEXT);
    const single = await foldAll(m.decoder, tokens, { chunkSize: tokens.length, keepLogits: true });
    const folded = await foldAll(m.decoder, tokens, { chunkSize: 11, keepLogits: true });
    assert.ok(folded.state.layers[0]?.key instanceof Uint16Array);
    assert.deepEqual(folded.state.layers[1]?.value, single.state.layers[1]?.value);
    const flat = (r: typeof single) => Float32Array.from(r.steps.flatMap((s) => Array.from(s.logits as Float32Array)));
    assert.ok(maxAbsDiff(flat(folded), flat(single)) <= TOLERANCE);
    // Half-precision keys change the logits a little against the float32 cache, but not a lot.
    const f32 = await logitsOf(await tinyLlamaFolder('kv-f32-ref'), 1000);
    const drift = maxAbsDiff(flat(single), f32);
    assert.ok(drift > 0 && drift < 0.1, `float16 vs float32 cache: max logit difference ${drift}`);
  } finally {
    await m.close();
  }
});
