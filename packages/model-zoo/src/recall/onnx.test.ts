/**
 * End to end: the recall spec, written by the ordinary graph builder, answers a 2K-token trial
 * under a plain onnxruntime-node session fed chunk by chunk with past_key_values, and its logits
 * match the reference forward pass.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { writeModelFolder } from '../index.ts';
import { EOS_ID, recallLayout, recallSpec, recallTrial } from './index.ts';
import { ReferenceDecoder, argmax } from './reference-forward.ts';

const spec = recallSpec();
const layout = recallLayout();
const root = mkdtempSync(join(tmpdir(), 'kvfold-recall-test-'));
let session: ort.InferenceSession;

before(async () => {
  await writeModelFolder(spec, join(root, 'recall'));
  session = await ort.InferenceSession.create(join(root, 'recall', 'onnx', 'model.onnx'));
});
after(async () => {
  await session?.release();
  rmSync(root, { recursive: true, force: true });
});

/** A KV cache as the session returns it: per layer, key and value [1, kvHeads, len, headDim]. */
type Cache = { key: ort.Tensor; value: ort.Tensor }[];

function emptyCache(): Cache {
  const { num_hidden_layers: layers, num_key_value_heads: kv, head_dim: D } = spec.config;
  const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, kv, 0, D]);
  return Array.from({ length: layers }, () => ({ key: empty(), value: empty() }));
}

/** Runs one chunk after `cache`; returns its logits [seq, vocab] and the grown cache. */
async function runChunk(ids: readonly number[], cache: Cache): Promise<{ logits: Float32Array<ArrayBufferLike>; cache: Cache }> {
  const past = cache[0]?.key.dims[2] ?? 0;
  const S = ids.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, S]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(past + S).fill(1n), [1, past + S]),
  };
  if (session.inputNames.includes('position_ids')) {
    feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(past + i)), [1, S]);
  }
  cache.forEach((layer, i) => {
    feeds[`past_key_values.${i}.key`] = layer.key;
    feeds[`past_key_values.${i}.value`] = layer.value;
  });
  const out = await session.run(feeds);
  const next = cache.map((_, i) => ({ key: out[`present.${i}.key`] as ort.Tensor, value: out[`present.${i}.value`] as ort.Tensor }));
  return { logits: (out.logits as ort.Tensor).data as Float32Array, cache: next };
}

/** Chunk size of the fold: several chunks, the needle in an early one. */
const CHUNK = 512;

test('a 2K-token trial folded in 512-token chunks through onnxruntime answers the needle, then </s>', async () => {
  const trial = recallTrial(layout, { length: 2048, needle: [31, 7, 88, 60, 2, 19], depth: 0.2, seed: 21 });
  let cache = emptyCache();
  let last: Float32Array<ArrayBufferLike> = new Float32Array(0);
  for (let start = 0; start < trial.ids.length; start += CHUNK) {
    const chunk = trial.ids.slice(start, start + CHUNK);
    const r = await runChunk(chunk, cache);
    cache = r.cache;
    last = r.logits.slice((chunk.length - 1) * spec.config.vocab_size);
  }
  assert.equal(cache[0]?.key.dims[2], trial.ids.length);
  const generated: number[] = [];
  while (generated.length <= trial.answer.length) {
    const next = argmax(last);
    generated.push(next);
    if (next === EOS_ID) break;
    const r = await runChunk([next], cache);
    cache = r.cache;
    last = r.logits;
  }
  assert.deepEqual(generated, [...trial.answer, EOS_ID]);
});

test('onnxruntime logits match the float64 reference forward pass', async () => {
  const trial = recallTrial(layout, { length: 256, needle: [50, 51, 52], depth: 0.6, seed: 2 });
  const reference = new ReferenceDecoder(spec).forward(trial.ids);
  const { logits } = await runChunk(trial.ids, emptyCache());
  const V = spec.config.vocab_size;
  let worst = 0;
  reference.forEach((row, t) => {
    for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs((row[v] as number) - (logits[t * V + v] as number)));
  });
  // Logits span -20..20; float32 arithmetic agrees with float64 to well within 1e-3.
  assert.ok(worst < 1e-3, `max |onnx - reference| = ${worst}`);
});
