#!/usr/bin/env node
// A plain onnxruntime-node script that knows nothing of KV-Fold's code: it folds token ids through
// an optimum-style decoder folder chunk by chunk via its past_key_values inputs, runs one single
// pass over the same ids, and prints the largest logit difference as JSON.
//
//   node plain-ort-fold.mjs <model-dir> [--tokens 300] [--chunk 37]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

const [dir, ...rest] = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 ? Number(rest[i + 1]) : fallback;
};
const T = arg('--tokens', 300);
const C = arg('--chunk', 37);
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
const layers = session.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n)).length;
const kvHeads = config.num_key_value_heads;
const headDim = config.head_dim ?? config.hidden_size / config.num_attention_heads;
const ids = Array.from({ length: T }, (_, i) => (i * 7919 + 13) % config.vocab_size);

async function run(chunkIds, start, past) {
  const n = chunkIds.length;
  const feeds = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(chunkIds, BigInt), [1, n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(start + n).fill(1n), [1, start + n]),
  };
  if (session.inputNames.includes('position_ids')) {
    feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(start + i)), [1, n]);
  }
  for (let l = 0; l < layers; l++) {
    for (const kv of ['key', 'value']) {
      feeds[`past_key_values.${l}.${kv}`] = past?.[`present.${l}.${kv}`] ?? new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
    }
  }
  return session.run(feeds);
}

const single = (await run(ids, 0, null)).logits.data;
let past = null;
let maxAbsDiff = 0;
for (let start = 0; start < T; start += C) {
  const out = await run(ids.slice(start, start + C), start, past);
  const logits = out.logits.data;
  for (let i = 0; i < logits.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(logits[i] - single[start * config.vocab_size + i]));
  }
  past = out;
}
console.log(JSON.stringify({ tokens: T, chunk: C, steps: Math.ceil(T / C), layers, maxAbsDiff }));
