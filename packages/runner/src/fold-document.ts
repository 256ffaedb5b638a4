/**
 * Folds one tokenized document and answers queries from the folded state: the work `kvfold fold`,
 * `kvfold run` and the queue worker share. Inputs are already loaded; this file does no I/O.
 */
import {
  type DecoderModel,
  type FoldStart,
  type FoldStep,
  fold,
  fullPolicy,
  generate,
  generationRows,
  type KvCache,
  type KvPolicy,
  type SamplingOptions,
  stepCount,
  tokensAfter,
} from '@kvfold/fold-core';

export interface Query {
  readonly text: string;
  readonly tokens: Int32Array;
}

export interface FoldDocumentInput {
  readonly model: DecoderModel;
  readonly tokens: Int32Array;
  readonly chunkSize: number;
  readonly queries: readonly Query[];
  readonly maxNewTokens: number;
  readonly stopTokens: readonly number[];
  readonly decode: (ids: readonly number[]) => string;
  /** Sample answers (default greedy); question i draws from seed + i, so each answer is reproducible alone. */
  readonly sampling?: SamplingOptions;
  /** An answer ends before the first of these it spells. */
  readonly stopStrings?: readonly string[];
  readonly nll?: boolean;
  readonly policy?: KvPolicy;
  /**
   * The cache to fold into (already holding step `from.step` when resuming). Default: a new one,
   * sized by `foldCacheRows` and released at the end.
   */
  readonly cache?: KvCache;
  readonly from?: FoldStart;
  /** Called after every step; may await (a checkpoint upload, a progress report). */
  readonly onStep?: (step: FoldStep) => void | Promise<void>;
  /** Checked before each step: when it returns true the fold stops early and `stoppedAt` is set. */
  readonly shouldStop?: () => boolean;
}

export interface Answer {
  readonly query: string;
  readonly text: string;
  readonly tokenIds: number[];
  readonly stopReason: string;
}

export interface ChunkNll {
  readonly step: number;
  readonly start: number;
  readonly end: number;
  readonly nll: number;
  readonly tokens: number;
}

export interface FoldDocumentResult {
  readonly tokens: number;
  readonly chunkSize: number;
  readonly steps: number;
  /** Steps this call ran (fewer than `steps` after a resume). */
  readonly stepsRun: number;
  readonly kvLength: number;
  readonly kvBytes: number;
  readonly answers: Answer[];
  readonly nll?: ChunkNll[];
  /** Set when `shouldStop` ended the fold before its last step. */
  readonly stoppedAt?: number;
  readonly lastLogits: Float32Array | undefined;
  readonly timings: { readonly foldMs: number; readonly generateMs: number; readonly tokensPerSecond: number };
}

/** Rows a cache needs to fold `tokens` in chunks of `chunkSize` and then answer every query. */
export function foldCacheRows(policy: KvPolicy, tokens: number, chunkSize: number, queries: readonly Query[], maxNewTokens: number): number {
  const answer = Math.max(0, ...queries.map((q) => generationRows(q.tokens.length, maxNewTokens)));
  return policy.rows(tokens, chunkSize, answer);
}

export async function foldDocument(input: FoldDocumentInput): Promise<FoldDocumentResult> {
  const { model, tokens, chunkSize } = input;
  const policy = input.policy ?? fullPolicy;
  const cache = input.cache ?? (await model.createCache({ capacity: foldCacheRows(policy, tokens.length, chunkSize, input.queries, input.maxNewTokens) }));
  try {
    return await foldInto(input, policy, cache);
  } finally {
    if (!input.cache) await cache.release();
  }
}

async function foldInto(input: FoldDocumentInput, policy: KvPolicy, cache: KvCache): Promise<FoldDocumentResult> {
  const { model, tokens, chunkSize } = input;
  const totalSteps = stepCount(tokens.length, chunkSize);
  const startStep = input.from?.step ?? 0;
  let lastLogits = input.from?.lastLogits;
  const nll: ChunkNll[] = [];
  let stepsRun = 0;
  let stoppedAt: number | undefined;

  const foldStarted = performance.now();
  if (!(startStep < totalSteps && input.shouldStop?.())) {
    for await (const s of fold(model, cache, tokens, {
      chunkSize,
      policy,
      ...(input.nll ? { nll: true } : {}),
      ...(input.from ? { from: input.from } : {}),
    })) {
      lastLogits = s.lastLogits;
      stepsRun++;
      if (s.nll !== undefined) nll.push({ step: s.step, start: s.start, end: s.end, nll: s.nll, tokens: s.nllTokens ?? 0 });
      await input.onStep?.(s);
      if (s.step < totalSteps && input.shouldStop?.()) {
        stoppedAt = s.step;
        break;
      }
    }
  } else {
    stoppedAt = startStep;
  }
  const foldMs = performance.now() - foldStarted;
  const foldedTokens = tokensAfter(startStep + stepsRun, tokens.length, chunkSize) - tokensAfter(startStep, tokens.length, chunkSize);

  const answers: Answer[] = [];
  const genStarted = performance.now();
  if (stoppedAt === undefined) {
    for (const [i, q] of input.queries.entries()) {
      const g = await generate(model, cache, q.tokens, {
        maxNewTokens: input.maxNewTokens,
        stopTokens: input.stopTokens,
        decode: input.decode,
        ...(input.sampling ? { sampling: { ...input.sampling, seed: input.sampling.seed + i } } : {}),
        ...(input.stopStrings?.length ? { stopStrings: input.stopStrings } : {}),
      });
      answers.push({ query: q.text, text: g.text ?? input.decode(g.tokenIds), tokenIds: g.tokenIds, stopReason: g.stopReason });
    }
  }
  const generateMs = performance.now() - genStarted;
  return {
    tokens: tokens.length,
    chunkSize,
    steps: totalSteps,
    stepsRun,
    kvLength: cache.length,
    kvBytes: cache.bytes,
    answers,
    ...(input.nll ? { nll } : {}),
    ...(stoppedAt !== undefined ? { stoppedAt } : {}),
    lastLogits,
    timings: { foldMs, generateMs, tokensPerSecond: foldMs > 0 ? (foldedTokens / foldMs) * 1000 : 0 },
  };
}
