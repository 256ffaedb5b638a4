/**
 * Long-context check of the recall model under onnxruntime-node (a benchmark, not a test: a
 * 128K-token fold takes minutes on a few CPU cores). Builds the model folder, folds one trial per
 * depth chunk by chunk with past_key_values, greedily decodes, and prints one JSON line per trial.
 *
 *   node --import tsx src/recall/long-context.bench.ts [--tokens 131064] [--chunk 1024] [--depths 0,0.5,1]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { writeModelFolder } from '../index.ts';
import { EOS_ID, recallLayout, recallSpec, recallTrial } from './index.ts';
import { argmax } from './reference-forward.ts';

/** The needle of every trial: 8 values spread over the code slots (slow and fast pairs alike). */
const NEEDLE = [95, 0, 47, 1, 63, 94, 30, 12];

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: String(131072 - NEEDLE.length - 1) },
    chunk: { type: 'string', default: '1024' },
    depths: { type: 'string', default: '0,0.5,1' },
  },
});
const tokens = Number(values.tokens);
const chunk = Number(values.chunk);
const spec = recallSpec();
const layout = recallLayout();
const root = mkdtempSync(join(tmpdir(), 'kvfold-recall-bench-'));
try {
  await writeModelFolder(spec, join(root, 'recall'));
  const session = await ort.InferenceSession.create(join(root, 'recall', 'onnx', 'model.onnx'));
  const { num_hidden_layers: L, num_key_value_heads: KV, head_dim: D, vocab_size: V } = spec.config;
  for (const depth of values.depths.split(',').map(Number)) {
    const started = Date.now();
    const trial = recallTrial(layout, { length: tokens, needle: NEEDLE, depth, bos: depth !== 0, seed: 1 });
    let cache: { key: ort.Tensor; value: ort.Tensor }[] = Array.from({ length: L }, () => ({
      key: new ort.Tensor('float32', new Float32Array(0), [1, KV, 0, D]),
      value: new ort.Tensor('float32', new Float32Array(0), [1, KV, 0, D]),
    }));
    const run = async (ids: readonly number[]): Promise<Float32Array<ArrayBufferLike>> => {
      const past = cache[0]?.key.dims[2] ?? 0;
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(past + ids.length).fill(1n), [1, past + ids.length]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (_, i) => BigInt(past + i)), [1, ids.length]),
      };
      cache.forEach((layer, i) => {
        feeds[`past_key_values.${i}.key`] = layer.key;
        feeds[`past_key_values.${i}.value`] = layer.value;
      });
      const out = await session.run(feeds);
      cache = cache.map((_, i) => ({ key: out[`present.${i}.key`] as ort.Tensor, value: out[`present.${i}.value`] as ort.Tensor }));
      const logits = (out.logits as ort.Tensor).data as Float32Array;
      return logits.slice((ids.length - 1) * V);
    };
    let last: Float32Array<ArrayBufferLike> = new Float32Array(0);
    for (let start = 0; start < trial.ids.length; start += chunk) last = await run(trial.ids.slice(start, start + chunk));
    const generated: number[] = [];
    while (generated.length <= trial.answer.length) {
      const next = argmax(last);
      generated.push(next);
      if (next === EOS_ID) break;
      last = await run([next]);
    }
    const expected = [...trial.answer, EOS_ID];
    console.log(
      JSON.stringify({
        tokens: trial.ids.length,
        depth,
        keyPosition: trial.keyPosition,
        lastPosition: (cache[0]?.key.dims[2] ?? 0) - 1,
        exact: generated.length === expected.length && generated.every((id, i) => id === expected[i]),
        generated,
        expected,
        seconds: (Date.now() - started) / 1000,
      }),
    );
  }
  await session.release();
} finally {
  rmSync(root, { recursive: true, force: true });
}
