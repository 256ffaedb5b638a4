/**
 * Folds one tokenized document and answers queries from the folded state: the work `kvfold fold`,
 * `kvfold run` and the queue worker share. Inputs are already loaded; this file does no I/O.
 */
import {
  type DecoderModel,
  type FoldStart,
  type FoldStep,
  type KvPolicy,
  type KvState,
  fold,
  fullPolicy,
  generate,
  stepCount,
  tokensAfter,
} from '@kvfold/fold-core';

export interface Query {
  readonly text: string;
  readonly tokens: Int32Array;
}

export interface FoldDocumentInput<S = KvState> {
  readonly model: DecoderModel;
  readonly tokens: Int32Array;
  readonly chunkSize: number;
  readonly queries: readonly Query[];
  readonly maxNewTokens: number;
  readonly stopTokens: readonly number[];
  readonly decode: (ids: readonly number[]) => string;
  readonly nll?: boolean;
  readonly policy?: KvPolicy<S>;
  readonly from?: FoldStart<S>;
  /** Called after every step; may await (a checkpoint upload, a progress report). */
  readonly onStep?: (step: FoldStep<S>) => void | Promise<void>;
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

export interface FoldDocumentResult<S = KvState> {
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
  readonly state: S;
  readonly lastLogits: Float32Array | undefined;
  readonly timings: { readonly foldMs: number; readonly generateMs: number; readonly tokensPerSecond: number };
}

export async function foldDocument<S = KvState>(input: FoldDocumentInput<S>): Promise<FoldDocumentResult<S>> {
  const { model, tokens, chunkSize } = input;
  const policy = input.policy ?? (fullPolicy as unknown as KvPolicy<S>);
  const totalSteps = stepCount(tokens.length, chunkSize);
  const startStep = input.from?.step ?? 0;
  let state = input.from?.state;
  let lastLogits = input.from?.lastLogits;
  const nll: ChunkNll[] = [];
  let stepsRun = 0;
  let stoppedAt: number | undefined;

  const foldStarted = performance.now();
  if (!(startStep < totalSteps && input.shouldStop?.())) {
    for await (const s of fold(model, tokens, {
      chunkSize,
      policy,
      ...(input.nll ? { nll: true } : {}),
      ...(input.from ? { from: input.from } : {}),
    })) {
      state = s.state;
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
  const folded = state ?? policy.init(model.layout);
  const foldedTokens = tokensAfter(startStep + stepsRun, tokens.length, chunkSize) - tokensAfter(startStep, tokens.length, chunkSize);

  const answers: Answer[] = [];
  const genStarted = performance.now();
  if (stoppedAt === undefined) {
    for (const q of input.queries) {
      const g = await generate(model, folded, q.tokens, { maxNewTokens: input.maxNewTokens, stopTokens: input.stopTokens, policy });
      answers.push({ query: q.text, text: input.decode(g.tokenIds), tokenIds: g.tokenIds, stopReason: g.stopReason });
    }
  }
  const generateMs = performance.now() - genStarted;
  return {
    tokens: tokens.length,
    chunkSize,
    steps: totalSteps,
    stepsRun,
    kvLength: policy.length(folded),
    kvBytes: policy.bytes(folded),
    answers,
    ...(input.nll ? { nll } : {}),
    ...(stoppedAt !== undefined ? { stoppedAt } : {}),
    state: folded,
    lastLogits,
    timings: { foldMs, generateMs, tokensPerSecond: foldMs > 0 ? (foldedTokens / foldMs) * 1000 : 0 },
  };
}
