/**
 * One folder's measurements for the precision benchmark, each taken in a process of its own by
 * the caller: a fold's prefill tokens/s and peak RSS, then decode tokens/s after it; and a folder's
 * fidelity against a reference folder (float32) on the same tokens.
 */
import { foldAll, generate, KV_WIDTHS, type KvWidth, tokenNll } from '@kvfold/fold-core';
import { OnnxDecoder, readModelFolder, weightsOf } from '@kvfold/onnx';
import { benchIds } from '../engine/measure-engine.ts';

const MiB = 2 ** 20;

export interface PrecisionRunOptions {
  readonly modelDir: string;
  readonly tokens: number;
  readonly chunkSize: number;
  /** Tokens generated after the fold (decode speed). */
  readonly decode: number;
  readonly threads: number;
  /** The width the cache is held at (default f32). */
  readonly kv?: KvWidth;
}

export interface PrecisionRun {
  readonly weights: string;
  readonly loadMs: number;
  /** RSS once the session is created, before any cache. */
  readonly loadedRssMiB: number;
  readonly prefillTokensPerSecond: number;
  readonly decodeTokensPerSecond: number;
  /** Peak RSS of the process: load, fold and decode. */
  readonly peakRssMiB: number;
  readonly kvMiB: number;
}

export async function measurePrecisionRun(o: PrecisionRunOptions): Promise<PrecisionRun> {
  const folder = await readModelFolder(o.modelDir);
  const started = performance.now();
  const decoder = await OnnxDecoder.create(folder, { threads: o.threads, kvDtype: KV_WIDTHS[o.kv ?? 'f32'] });
  try {
    const loadMs = performance.now() - started;
    const loadedRss = process.memoryUsage.rss();
    const ids = benchIds(o.tokens, decoder.layout.vocabSize);
    const cache = await decoder.createCache({ capacity: o.tokens + o.decode + 1 });
    const foldStarted = performance.now();
    await foldAll(decoder, cache, ids, { chunkSize: o.chunkSize });
    const foldMs = performance.now() - foldStarted;
    const decodeStarted = performance.now();
    // Every token is decoded: no stop token ends it early.
    const g = await generate(decoder, cache, ids.subarray(0, 1), { maxNewTokens: o.decode });
    const decodeMs = performance.now() - decodeStarted;
    const kvBytes = cache.bytes;
    await cache.release();
    return {
      weights: weightsOf(folder),
      loadMs,
      loadedRssMiB: loadedRss / MiB,
      prefillTokensPerSecond: (o.tokens / foldMs) * 1000,
      decodeTokensPerSecond: (g.tokenIds.length / decodeMs) * 1000,
      peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MiB,
      kvMiB: kvBytes / MiB,
    };
  } finally {
    await decoder.close();
  }
}

export interface FidelityOptions {
  readonly referenceDir: string;
  readonly modelDir: string;
  /** Prompt tokens; the reference then continues them greedily for `continuation` tokens. */
  readonly tokens: number;
  readonly continuation: number;
  readonly chunkSize: number;
  readonly threads: number;
}

export interface Fidelity {
  readonly positions: number;
  /** Largest |logit - reference logit| over every position and vocabulary entry. */
  readonly maxAbsLogit: number;
  /** Share of positions whose most likely token is the reference's. */
  readonly greedyAgreement: number;
  /** Mean NLL (nats/token) of the reference's greedy continuation, under the reference and under the model. */
  readonly referenceNll: number;
  readonly nll: number;
}

/**
 * The model beside the reference on one sequence: a prompt, then the reference's own greedy
 * continuation of it (a text the reference finds likely, so its NLL means something even for
 * random weights). Both fold the whole sequence chunk by chunk with every position's logits.
 */
export async function measureFidelity(o: FidelityOptions): Promise<Fidelity> {
  const [reference, model] = await Promise.all([
    readModelFolder(o.referenceDir).then((f) => OnnxDecoder.create(f, { threads: o.threads })),
    readModelFolder(o.modelDir).then((f) => OnnxDecoder.create(f, { threads: o.threads })),
  ]);
  try {
    const vocab = reference.layout.vocabSize;
    const prompt = benchIds(o.tokens, vocab);
    const cache = await reference.createCache({ capacity: o.tokens + o.continuation });
    await foldAll(reference, cache, prompt, { chunkSize: o.chunkSize });
    const g = await generate(reference, cache, prompt.subarray(o.tokens - 1), { maxNewTokens: o.continuation });
    await cache.release();
    const sequence = Int32Array.from([...prompt, ...g.tokenIds]);
    const logitsOf = async (decoder: OnnxDecoder) => {
      const c = await decoder.createCache({ capacity: sequence.length });
      const r = await foldAll(decoder, c, sequence, { chunkSize: o.chunkSize, keepLogits: true });
      await c.release();
      return r.steps.map((s) => s.logits as Float32Array);
    };
    const [a, b] = [await logitsOf(reference), await logitsOf(model)];
    let maxAbs = 0;
    let agree = 0;
    let positions = 0;
    let nllRef = 0;
    let nll = 0;
    let at = 0; // sequence position of the step's first row
    for (const [s, ref] of a.entries()) {
      const got = b[s] as Float32Array;
      const rows = ref.length / vocab;
      for (let r = 0; r < rows; r++) {
        const base = r * vocab;
        let ia = 0;
        let ib = 0;
        for (let v = 0; v < vocab; v++) {
          maxAbs = Math.max(maxAbs, Math.abs((ref[base + v] as number) - (got[base + v] as number)));
          if ((ref[base + v] as number) > (ref[base + ia] as number)) ia = v;
          if ((got[base + v] as number) > (got[base + ib] as number)) ib = v;
        }
        if (ia === ib) agree++;
        positions++;
        // Row at position p predicts token p + 1: score the continuation's tokens.
        const p = at + r;
        if (p + 1 >= o.tokens && p + 1 < sequence.length) {
          nllRef += tokenNll(ref, r, vocab, sequence[p + 1] as number);
          nll += tokenNll(got, r, vocab, sequence[p + 1] as number);
        }
      }
      at += rows;
    }
    const scored = sequence.length - o.tokens;
    return { positions, maxAbsLogit: maxAbs, greedyAgreement: agree / positions, referenceNll: nllRef / scored, nll: nll / scored };
  } finally {
    await Promise.all([reference.close(), model.close()]);
  }
}
