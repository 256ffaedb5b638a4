/**
 * Per-step drift between folded and single-pass logits.
 *
 * The fold reads the document chunk by chunk; for each step t (positions [start, end)) its logits
 * are compared with the reference's logits at the same positions:
 *
 *   maxAbs  = max |folded - reference| over the chunk's positions and the vocabulary
 *   KL      = KL(reference ‖ folded) per position, in nats, computed in float64 from log-softmax;
 *             the step reports its mean and its max over the chunk's positions
 *
 * The reference is ONE cache-free forward pass over the document's first E tokens (no past, all
 * positions' logits). Causal attention makes its logits at every position i < E the logits a single
 * pass over the whole document gives at i. E is the whole document when that pass fits under
 * `referenceLimitMiB` (estimated below); otherwise E is the longest prefix, in whole chunks, that
 * fits, and later steps are listed without a reference. No reference is built for them on purpose:
 * any way of computing those positions' logits in less memory reads a cache written by an earlier
 * pass, and that is a fold, the very thing under test.
 */
import { createPolicy, type DecoderModel, fold, type KvWidth, kvRowBytes, type ModelLayout } from '@kvfold/fold-core';
import { NiahError } from '../niah/errors.ts';

/** Score tensors a plain attention graph holds per layer at once: scores, masked scores, softmax. */
export const SCORE_COPIES = 3;
/** Hidden-size activations alive at once in one layer (residual, norms, q, k, v, attention out, MLP in/out). */
export const ACTIVATION_COPIES = 12;
/** The logits are held twice: ONNX Runtime's output and the copy handed back from its worker thread. */
export const LOGIT_COPIES = 2;
/** Default bound on the reference pass's estimated memory. */
export const DEFAULT_REFERENCE_LIMIT_MIB = 4096;

export interface ModelDims extends ModelLayout {
  readonly heads: number;
  readonly hidden: number;
}

/** Estimated bytes of one cache-free forward pass over `tokens` tokens, term by term. */
export function singlePassBytes(dims: ModelDims, tokens: number): { scores: number; logits: number; kv: number; activations: number; total: number } {
  const scores = SCORE_COPIES * dims.heads * tokens * tokens * 4;
  const logits = LOGIT_COPIES * tokens * dims.vocabSize * 4;
  const kv = tokens * kvRowBytes(dims);
  const activations = ACTIVATION_COPIES * tokens * Math.max(dims.hidden, dims.heads * dims.headDim) * 4;
  return { scores, logits, kv, activations, total: scores + logits + kv + activations };
}

export interface DriftStep {
  readonly step: number;
  readonly start: number;
  readonly end: number;
  /** Undefined when the step lies beyond the reference. */
  readonly maxAbs?: number;
  readonly meanKl?: number;
  readonly maxKl?: number;
  /** Share of the chunk's positions where folded and reference argmax agree. */
  readonly argmaxAgreement?: number;
}

export interface DriftResult {
  readonly tokens: number;
  readonly chunkSize: number;
  /** The width the fold's cache was held at (the model's, as loaded). */
  readonly kv: KvWidth;
  readonly reference: { readonly kind: 'single-pass'; readonly tokens: number; readonly estimatedMiB: number; readonly limitMiB: number; readonly ms: number };
  readonly steps: DriftStep[];
  readonly overall: { readonly maxAbs: number; readonly maxKl: number; readonly meanKl: number; readonly stepsCompared: number };
  readonly foldMs: number;
}

export interface DriftInput {
  readonly model: DecoderModel;
  readonly dims: ModelDims;
  readonly tokens: Int32Array;
  readonly chunkSize: number;
  /** The width of `model`'s cache, for the report (default f32). */
  readonly kv?: KvWidth;
  readonly referenceLimitMiB?: number;
  readonly onStep?: (step: DriftStep, totalSteps: number) => void;
}

const MIB = 2 ** 20;

/** Refuses a drift document longer than the positions the model was trained for, as fold and niah do. */
export function checkDriftLength(length: number, maxPositions: number): void {
  if (length > maxPositions) {
    throw new NiahError('KVF_DRIFT_TOO_LONG', `--length: ${length} tokens is beyond the model's ${maxPositions} positions (max_position_embeddings); use a length up to ${maxPositions}`);
  }
}

export async function measureDrift(input: DriftInput): Promise<DriftResult> {
  const { model, dims, tokens, chunkSize } = input;
  const kv = input.kv ?? 'f32';
  const limitMiB = input.referenceLimitMiB ?? DEFAULT_REFERENCE_LIMIT_MIB;
  const L = tokens.length;
  checkDriftLength(L, model.layout.maxPositions);
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize >= L) {
    throw new NiahError('KVF_DRIFT_BAD_INPUT', `--chunk-size ${chunkSize} must be an integer in [1, ${L - 1}]: drift compares a fold of at least two steps with one pass`);
  }
  let E = L;
  while (E > 0 && singlePassBytes(dims, E).total / MIB > limitMiB) E = Math.floor((E - 1) / chunkSize) * chunkSize;
  if (E < chunkSize) {
    const need = singlePassBytes(dims, chunkSize).total / MIB;
    throw new NiahError(
      'KVF_DRIFT_BAD_INPUT',
      `a single-pass reference over even one chunk (${chunkSize} tokens) needs ~${need.toFixed(0)} MiB, over --reference-limit-mib ${limitMiB}; raise the limit or use a smaller --chunk-size`,
    );
  }
  const vocab = dims.vocabSize;
  const refStarted = performance.now();
  const refCache = await model.createCache({ capacity: E });
  const ref = await model.step({ tokens: tokens.subarray(0, E), cache: refCache, logits: 'all' }).finally(() => refCache.release());
  const refMs = performance.now() - refStarted;
  const policy = createPolicy({ kind: 'full' });
  const steps: DriftStep[] = [];
  const cache = await model.createCache({ capacity: L });
  const foldStarted = performance.now();
  try {
    for await (const s of fold(model, cache, tokens, { chunkSize, policy, keepLogits: true })) {
      const logits = s.logits as Float32Array; // [chunk, vocab]
      let row: DriftStep = { step: s.step, start: s.start, end: s.end };
      if (s.end <= E) {
        let maxAbs = 0;
        let klSum = 0;
        let maxKl = 0;
        let agree = 0;
        for (let i = 0; i < s.end - s.start; i++) {
          const r = ref.logits.subarray((s.start + i) * vocab, (s.start + i + 1) * vocab);
          const f = logits.subarray(i * vocab, (i + 1) * vocab);
          const d = compareRows(r, f);
          maxAbs = Math.max(maxAbs, d.maxAbs);
          klSum += d.kl;
          maxKl = Math.max(maxKl, d.kl);
          if (d.sameArgmax) agree++;
        }
        const n = s.end - s.start;
        row = { ...row, maxAbs, meanKl: klSum / n, maxKl, argmaxAgreement: agree / n };
      }
      steps.push(row);
      input.onStep?.(row, s.totalSteps);
    }
  } finally {
    await cache.release();
  }
  const foldMs = performance.now() - foldStarted;
  const compared = steps.filter((s) => s.maxAbs !== undefined);
  return {
    tokens: L,
    chunkSize,
    kv,
    reference: { kind: 'single-pass', tokens: E, estimatedMiB: singlePassBytes(dims, E).total / MIB, limitMiB, ms: refMs },
    steps,
    overall: {
      maxAbs: Math.max(0, ...compared.map((s) => s.maxAbs as number)),
      maxKl: Math.max(0, ...compared.map((s) => s.maxKl as number)),
      meanKl: compared.reduce((a, s) => a + (s.meanKl as number) * (s.end - s.start), 0) / Math.max(1, compared.reduce((a, s) => a + s.end - s.start, 0)),
      stepsCompared: compared.length,
    },
    foldMs,
  };
}

/** max |r - f|, KL(softmax r ‖ softmax f) in float64, and whether the argmaxes agree. */
export function compareRows(r: Float32Array, f: Float32Array): { maxAbs: number; kl: number; sameArgmax: boolean } {
  let maxAbs = 0;
  let rMax = Number.NEGATIVE_INFINITY;
  let fMax = Number.NEGATIVE_INFINITY;
  let rArg = 0;
  let fArg = 0;
  for (let v = 0; v < r.length; v++) {
    const a = r[v] as number;
    const b = f[v] as number;
    maxAbs = Math.max(maxAbs, Math.abs(a - b));
    if (a > rMax) [rMax, rArg] = [a, v];
    if (b > fMax) [fMax, fArg] = [b, v];
  }
  let rSum = 0;
  let fSum = 0;
  for (let v = 0; v < r.length; v++) {
    rSum += Math.exp((r[v] as number) - rMax);
    fSum += Math.exp((f[v] as number) - fMax);
  }
  const rLse = rMax + Math.log(rSum);
  const fLse = fMax + Math.log(fSum);
  let kl = 0;
  for (let v = 0; v < r.length; v++) {
    const lr = (r[v] as number) - rLse;
    const lf = (f[v] as number) - fLse;
    kl += Math.exp(lr) * (lr - lf);
  }
  return { maxAbs, kl: Math.max(0, kl), sameArgmax: rArg === fArg };
}
