/**
 * The device check: the same fold on an accelerator and on the CPU, compared. For each model and
 * length it folds the same token ids on both, keeps every position's logits, and reports the
 * largest difference and each side's tokens/s. A device session runs the resident graph (docs/engine.md),
 * so this is also the proof that its cache bookkeeping matches the CPU's.
 */
import { foldAll } from '@kvfold/fold-core';
import { type Device, OnnxDecoder, readModelFolder } from '@kvfold/onnx';
import { benchIds } from '../engine/measure-engine.ts';

export interface DeviceCheckRow {
  readonly model: string;
  readonly tokens: number;
  readonly chunkSize: number;
  readonly device: Device;
  readonly plan: string;
  readonly deviceTokensPerSecond: number;
  readonly cpuTokensPerSecond: number;
  /** Tokens the CPU folded (a prefix, when the CPU would take too long), and the positions compared. */
  readonly cpuTokens: number;
  /** max |device - cpu| over every position's logits the CPU folded. */
  readonly maxAbsDiff: number;
  /** Share of positions whose argmax agrees. */
  readonly argmaxAgreement: number;
}

async function foldOn(dir: string, device: Device, tokens: number, chunkSize: number, threads?: number) {
  const folder = await readModelFolder(dir);
  const decoder = await OnnxDecoder.create(folder, { device, ...(threads ? { threads } : {}) });
  try {
    const ids = benchIds(tokens, decoder.layout.vocabSize);
    const cache = await decoder.createCache({ capacity: tokens });
    const started = performance.now();
    const r = await foldAll(decoder, cache, ids, { chunkSize, keepLogits: true });
    const ms = performance.now() - started;
    await cache.release();
    return { steps: r.steps, tokensPerSecond: (tokens / ms) * 1000, plan: decoder.planSummary, vocab: decoder.layout.vocabSize };
  } finally {
    await decoder.close();
  }
}

/** Folds on `device` and on the CPU and compares them. */
export async function deviceCheck(o: { modelDir: string; model: string; device: Device; tokens: number; chunkSize: number; threads?: number; cpuTokens?: number }): Promise<DeviceCheckRow> {
  const cpuTokens = Math.min(o.tokens, o.cpuTokens ?? o.tokens);
  const onDevice = await foldOn(o.modelDir, o.device, o.tokens, o.chunkSize);
  const onCpu = await foldOn(o.modelDir, 'cpu', cpuTokens, o.chunkSize, o.threads);
  let maxAbsDiff = 0;
  let agree = 0;
  let positions = 0;
  const V = onCpu.vocab;
  onCpu.steps.forEach((s, i) => {
    const a = s.logits as Float32Array;
    const b = onDevice.steps[i]?.logits as Float32Array;
    for (let p = 0; p < a.length / V; p++) {
      let ia = 0;
      let ib = 0;
      for (let v = 0; v < V; v++) {
        const x = a[p * V + v] as number;
        const y = b[p * V + v] as number;
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(x - y));
        if (x > (a[p * V + ia] as number)) ia = v;
        if (y > (b[p * V + ib] as number)) ib = v;
      }
      if (ia === ib) agree++;
      positions++;
    }
  });
  return {
    model: o.model,
    tokens: o.tokens,
    chunkSize: o.chunkSize,
    device: o.device,
    plan: onDevice.plan,
    deviceTokensPerSecond: onDevice.tokensPerSecond,
    cpuTokensPerSecond: onCpu.tokensPerSecond,
    cpuTokens,
    maxAbsDiff,
    argmaxAgreement: agree / positions,
  };
}
