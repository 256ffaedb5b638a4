/**
 * One engine measurement, in a process of its own so its peak RSS is its alone: fold `tokens`
 * token ids through a model folder in chunks of `chunkSize`, with KV-Fold's engine (the session's
 * own cache, in place) or the plain onnxruntime-node loop, and report speed, memory against what
 * the fold needs by construction, copies, and utilisation against ONNX Runtime's MatMul.
 */
import { stat } from 'node:fs/promises';
import { foldAll, type KvLayout } from '@kvfold/fold-core';
import { OnnxDecoder, readModelFolder } from '@kvfold/onnx';
import type { MatMulCeiling } from './matmul-ceiling.ts';
import { foldFlops, shapeOf, stepWorkspaceBytes } from './model-cost.ts';

export type Engine = 'kvfold' | 'plain';

export interface EngineRunOptions {
  readonly modelDir: string;
  readonly tokens: number;
  readonly chunkSize: number;
  readonly engine: Engine;
  readonly threads: number;
}

export interface EngineMeasurement extends EngineRunOptions {
  readonly model: string;
  readonly steps: number;
  readonly foldMs: number;
  readonly tokensPerSecond: number;
  /** RSS once the model is loaded, before the fold: runtime, session and weights. */
  readonly loadedRssMiB: number;
  readonly peakRssMiB: number;
  /** Bytes of the model files (weights and graph). */
  readonly weightsMiB: number;
  /** The cache the fold ends with (rows x row bytes). */
  readonly kvMiB: number;
  /** One step's attention workspace at the last step (model-cost.ts). */
  readonly workspaceMiB: number;
  /** (peak - loaded - workspace) / KV: how many times the cache is held at the peak. */
  readonly cacheCopiesAtPeak: number;
  /** Bytes the engine's own code copied per step (mean and largest); null for the plain loop. */
  readonly copiedBytesPerStep: { readonly mean: number; readonly max: number } | null;
  /** Bytes onnxruntime-node copied out per step; null for the plain loop. */
  readonly outputBytesPerStep: number | null;
  readonly plan: string;
  readonly modelGflop: number;
  readonly achievedGflops: number;
  readonly ceiling: MatMulCeiling;
  /** achievedGflops / ceiling.gflops */
  readonly mfu: number;
}

const MiB = 2 ** 20;

/** Deterministic token ids spread over the vocabulary (what is folded does not change its cost). */
export function benchIds(tokens: number, vocab: number): Int32Array {
  return Int32Array.from({ length: tokens }, (_, i) => (i * 7919 + 13) % vocab);
}

export async function measureEngine(o: EngineRunOptions): Promise<EngineMeasurement> {
  const folder = await readModelFolder(o.modelDir);
  const shape = shapeOf(folder.config);
  const ids = benchIds(o.tokens, shape.vocab);
  let loadedRss = 0;
  const loaded = () => {
    loadedRss = process.memoryUsage.rss();
  };
  let foldMs: number;
  let steps: number;
  let copied: EngineMeasurement['copiedBytesPerStep'] = null;
  let outputBytesPerStep: number | null = null;
  let plan = 'plain onnxruntime-node loop: presents fed back as the past, on the main thread';
  let kvBytes: number;
  let attention: 'GroupQueryAttention' | 'Concat' | 'standard' = 'standard';
  let layout: KvLayout;
  if (o.engine === 'kvfold') {
    // The decoder alone: the tokenizer is no part of either engine's fold.
    const decoder = await OnnxDecoder.create(folder, { threads: o.threads });
    try {
      layout = decoder.layout;
      plan = decoder.planSummary;
      if (decoder.plan.kind === 'in-place') attention = decoder.plan.attention;
      loaded();
      const cache = await decoder.createCache({ capacity: o.tokens });
      const started = performance.now();
      const r = await foldAll(decoder, cache, ids, { chunkSize: o.chunkSize });
      foldMs = performance.now() - started;
      steps = r.steps.length;
      const perStep = r.steps.map((s) => s.copiedBytes);
      copied = { mean: perStep.reduce((a, b) => a + b, 0) / steps, max: Math.max(...perStep) };
      outputBytesPerStep = decoder.counters.outputBytes / steps;
      kvBytes = cache.bytes;
      await cache.release();
    } finally {
      await decoder.close();
    }
  } else {
    // onnxruntime-node is loaded on this thread only for the plain loop: KV-Fold's engine loads it
    // in its session thread alone.
    const { plainLoop } = await import('./plain-loop.ts');
    const r = await plainLoop(o.modelDir, ids, o.chunkSize, o.threads, loaded);
    foldMs = r.foldMs;
    steps = r.steps;
    kvBytes = r.kvBytes;
    layout = { layers: shape.layers, kvHeads: shape.kvHeads, headDim: shape.headDim, dtype: r.dtype, maxPositions: folder.config.max_position_embeddings };
  }
  // The peak is read before the ceiling is measured: its matrices are no part of the fold.
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const { measureMatMulCeiling } = await import('./matmul-ceiling.ts');
  const ceiling = await measureMatMulCeiling(o.threads);
  const flops = foldFlops(shape, o.tokens, o.chunkSize);
  const achieved = flops / (foldMs * 1e6);
  const workspace = stepWorkspaceBytes(shape, layout, o.tokens, o.chunkSize, attention);
  let weights = 0;
  for (const f of [folder.onnxPath, ...folder.externalData]) weights += (await stat(f)).size;
  return {
    ...o,
    model: folder.dir,
    steps,
    foldMs,
    tokensPerSecond: (o.tokens / foldMs) * 1000,
    loadedRssMiB: loadedRss / MiB,
    peakRssMiB: peakRss / MiB,
    weightsMiB: weights / MiB,
    kvMiB: kvBytes / MiB,
    workspaceMiB: workspace / MiB,
    cacheCopiesAtPeak: (peakRss - loadedRss - workspace) / kvBytes,
    copiedBytesPerStep: copied,
    outputBytesPerStep,
    plan,
    modelGflop: flops / 1e9,
    achievedGflops: achieved,
    ceiling,
    mfu: achieved / ceiling.gflops,
  };
}
