/**
 * Questions of one folded document answered three ways, each timed: one at a time through the
 * standard step graph (each decode step's attention gathers the whole cache), one at a time as
 * packed steps (the cache read where it lies), and decoded together (one packed step carries the
 * next token of every question). The answers of the three are compared token for token.
 */
import { type DecoderModel, foldAll, type Generation, generate, generateBatch, KV_WIDTHS, type KvWidth } from '@kvfold/fold-core';
import { loadModel } from '@kvfold/onnx';
import { benchIds } from '../engine/measure-engine.ts';

export interface BatchBenchOptions {
  readonly modelDir: string;
  /** Tokens of the folded document. */
  readonly tokens: number;
  readonly chunkSize: number;
  /** Question counts to measure, e.g. [1, 4, 8, 16]. */
  readonly questions: readonly number[];
  /** Tokens each question's prompt holds. */
  readonly promptTokens: number;
  /** Tokens generated for each question (no stop token: every answer is this long). */
  readonly newTokens: number;
  readonly threads?: number;
  readonly kv?: KvWidth;
  readonly log?: (line: string) => void;
}

/** One way of answering `questions` questions: wall time and generated tokens per second. */
export interface BatchTiming {
  readonly ms: number;
  readonly tokensPerSecond: number;
}

export interface BatchRow {
  readonly questions: number;
  /** One at a time, through `step` (what every question cost before packed steps). */
  readonly sequential: BatchTiming;
  /** One at a time, each as packed steps of one sequence. */
  readonly alone: BatchTiming;
  /** All together: one packed step per generated token of every question. */
  readonly batched: BatchTiming;
  /** batched tokens/s over sequential tokens/s. */
  readonly speedup: number;
  /** The three gave the same tokens for every question. */
  readonly sameAnswers: boolean;
}

export interface BatchReport {
  readonly model: string;
  readonly plan: string;
  readonly tokens: number;
  readonly chunkSize: number;
  readonly promptTokens: number;
  readonly newTokens: number;
  readonly kv: KvWidth;
  readonly foldMs: number;
  readonly rows: BatchRow[];
}

/** The decoder seen through `step` alone, so `generate` takes the standard step graph. */
function stepOnly(decoder: DecoderModel): DecoderModel {
  return { layout: decoder.layout, createCache: (o) => decoder.createCache(o), step: (input) => decoder.step(input) };
}

export async function measureBatch(o: BatchBenchOptions): Promise<BatchReport> {
  const kv = o.kv ?? 'f32';
  const model = await loadModel(o.modelDir, { ...(o.threads ? { threads: o.threads } : {}), kvDtype: KV_WIDTHS[kv] });
  try {
    const { decoder } = model;
    if (!decoder.packs) throw new RangeError(`${o.modelDir} cannot run packed steps (${decoder.planSummary}): there is nothing to compare`);
    const vocab = decoder.layout.vocabSize;
    const most = Math.max(...o.questions);
    const cache = await decoder.createCache({ capacity: o.tokens + most * (o.promptTokens + o.newTokens) });
    const started = performance.now();
    await foldAll(decoder, cache, benchIds(o.tokens, vocab), { chunkSize: o.chunkSize });
    const foldMs = performance.now() - started;
    o.log?.(`folded ${o.tokens} tokens in ${(foldMs / 1000).toFixed(1)} s (${decoder.planSummary})`);
    // Distinct prompts: windows of a longer id sequence, one per question.
    const pool = benchIds(o.tokens + most * o.promptTokens, vocab);
    const prompts = Array.from({ length: most }, (_, q) => pool.slice(o.tokens + q * o.promptTokens, o.tokens + (q + 1) * o.promptTokens));
    const options = { maxNewTokens: o.newTokens };
    const timed = async (run: () => Promise<Generation[]>) => {
      const t0 = performance.now();
      const answers = await run();
      const ms = performance.now() - t0;
      const generated = answers.reduce((n, g) => n + g.tokenIds.length, 0);
      return { answers, timing: { ms, tokensPerSecond: (generated / ms) * 1000 } };
    };
    const oneByOne = (m: DecoderModel, ps: Int32Array[]) => async () => {
      const out: Generation[] = [];
      for (const p of ps) out.push(await generate(m, cache, p, options));
      return out;
    };
    const rows: BatchRow[] = [];
    o.log?.(BATCH_HEADER);
    for (const n of o.questions) {
      const ps = prompts.slice(0, n);
      const sequential = await timed(oneByOne(stepOnly(decoder), ps));
      const alone = await timed(oneByOne(decoder, ps));
      const batched = await timed(() => generateBatch(decoder, cache, ps, { ...options, maxBatch: n, maxStepTokens: o.chunkSize }));
      const ids = (gs: Generation[]) => JSON.stringify(gs.map((g) => g.tokenIds));
      const row: BatchRow = {
        questions: n,
        sequential: sequential.timing,
        alone: alone.timing,
        batched: batched.timing,
        speedup: batched.timing.tokensPerSecond / sequential.timing.tokensPerSecond,
        sameAnswers: ids(sequential.answers) === ids(alone.answers) && ids(alone.answers) === ids(batched.answers),
      };
      rows.push(row);
      o.log?.(formatRow(row));
    }
    await cache.release();
    return { model: o.modelDir, plan: decoder.planSummary, tokens: o.tokens, chunkSize: o.chunkSize, promptTokens: o.promptTokens, newTokens: o.newTokens, kv, foldMs, rows };
  } finally {
    await model.close();
  }
}

const BATCH_HEADER = `${'questions'.padStart(9)} ${'sequential tok/s'.padStart(17)} ${'alone tok/s'.padStart(12)} ${'batched tok/s'.padStart(14)} ${'speedup'.padStart(8)}  same answers`;

function formatRow(r: BatchRow): string {
  const f = (t: BatchTiming) => t.tokensPerSecond.toFixed(1);
  return `${String(r.questions).padStart(9)} ${f(r.sequential).padStart(17)} ${f(r.alone).padStart(12)} ${f(r.batched).padStart(14)} ${`${r.speedup.toFixed(2)}x`.padStart(8)}  ${r.sameAnswers ? 'yes' : 'NO'}`;
}
