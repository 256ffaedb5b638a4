/** The benchmark's arithmetic: model FLOPs counted query by query, and the bars decided on the numbers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkBars, type CaseResult } from './engine-bench.ts';
import type { EngineMeasurement } from './measure-engine.ts';
import { foldFlops, layerParams, lmHeadParams, type ModelShape } from './model-cost.ts';

const shape: ModelShape = { layers: 2, hidden: 8, intermediate: 16, heads: 2, kvHeads: 1, headDim: 4, vocab: 10 };

test('fold FLOPs: 2 per layer multiply-add per token, lm_head once per step, and 4 x headDim per query head and visible key', () => {
  // 5 tokens in chunks of 2 (3 steps): queries see 1, 2 | 3, 4 | 5 keys.
  const visible = 1 + 2 + 3 + 4 + 5;
  assert.equal(layerParams(shape), 2 * (8 * (2 + 2) * 4 + 2 * 4 * 8 + 3 * 8 * 16));
  assert.equal(lmHeadParams(shape), 8 * 10);
  assert.equal(foldFlops(shape, 5, 2), 2 * 5 * layerParams(shape) + 2 * 3 * lmHeadParams(shape) + 4 * 4 * 2 * 2 * visible);
  // The chunk size does not change the causal count; the steps change lm_head's.
  assert.equal(foldFlops(shape, 5, 5) - foldFlops(shape, 5, 1), 2 * (1 - 5) * lmHeadParams(shape));
});

const run = (o: Partial<EngineMeasurement>): EngineMeasurement =>
  ({ tokensPerSecond: 100, peakRssMiB: 500, loadedRssMiB: 200, kvMiB: 100, workspaceMiB: 50, cacheCopiesAtPeak: 2.5, achievedGflops: 50, threads: 2, copiedBytesPerStep: { mean: 10, max: 10 }, ...o }) as EngineMeasurement;

test('bars: memory against loaded + 1.5 x KV + workspace, utilisation against the ceiling, the peer by speed and memory', () => {
  const results: CaseResult[] = [
    { model: 'recall', tokens: 65536, kvfold: run({ peakRssMiB: 400, achievedGflops: 90 }), plain: null, runs: { kvfold: [], plain: [] } },
    { model: 'kv-heavy', tokens: 16384, kvfold: run({ peakRssMiB: 401 }), plain: null, runs: { kvfold: [], plain: [] } },
    { model: 'tiny-llama', tokens: 8192, kvfold: run({ tokensPerSecond: 97 }), plain: run({ tokensPerSecond: 100, peakRssMiB: 500 }), runs: { kvfold: [], plain: [] } },
    { model: 'tiny-llama', tokens: 32768, kvfold: run({ tokensPerSecond: 96, achievedGflops: 49 }), plain: run({ tokensPerSecond: 100 }), runs: { kvfold: [], plain: [] } },
  ];
  const bars = Object.fromEntries(checkBars(results, 200).map((b) => [b.name, b.pass]));
  assert.deepEqual(bars, {
    'recall 64K peak RSS': true, // 400 <= 200 + 150 + 50
    'kv-heavy 16K peak RSS': false, // 401 > 400
    'recall 64K model-FLOP utilisation': true, // 45%
    'tiny-llama 32K model-FLOP utilisation': false, // 24.5%
    'tiny-llama 8K against the plain loop': true,
    'tiny-llama 32K against the plain loop': false, // 0.96x
    'bytes copied per step': true,
  });
});
