/**
 * The fold: a left fold over a document's chunks with the KV cache as the accumulator.
 *
 *     cache_0 = empty
 *     cache_t = policy(cache_{t-1} ++ kv(chunk_t | cache_{t-1}))     positions continue
 *
 * The model appends each chunk's rows to the cache in place; the loop only decides the chunk,
 * scores it, lets the policy act, and reports. `fold` is an async generator yielding after every
 * step, so a caller can report progress, checkpoint, or stop; to resume, fill a cache with the
 * rows of step k (a checkpoint) and pass `from: { step: k }`.
 */
import { chunkSpan, stepCount, tokensAfter } from './chunks.ts';
import type { KvCache } from './kv-cache.ts';
import type { DecoderModel, LogitsMode } from './model.ts';
import { tokenNll } from './nll.ts';
import { fullPolicy, type KvPolicy } from './policy.ts';

/** Where a resumed fold starts: the steps already done (the cache holds their state) and, for NLL, the logits of the last token. */
export interface FoldStart {
  readonly step: number;
  /** Logits [vocab] of the last token folded so far; lets per-chunk NLL score the next chunk's first token. */
  readonly lastLogits?: Float32Array;
}

export interface FoldOptions {
  readonly chunkSize: number;
  /** What the accumulator keeps (default: full). */
  readonly policy?: KvPolicy;
  /** Compute per-chunk NLL (needs every position's logits). */
  readonly nll?: boolean;
  /** Keep every position's logits of each step in the yielded info (exactness checks). */
  readonly keepLogits?: boolean;
  readonly from?: FoldStart;
}

export interface FoldStep {
  /** Steps done, this one included (1-based count). */
  readonly step: number;
  readonly totalSteps: number;
  /** Tokens read so far. */
  readonly tokens: number;
  /** Rows in the cache after this step. */
  readonly kvLength: number;
  /** Bytes of the rows the cache holds after this step. */
  readonly kvBytes: number;
  /** The token range of this step's chunk. */
  readonly start: number;
  readonly end: number;
  /**
   * Mean NLL (nats/token) of this chunk's tokens given everything before them, when NLL is asked
   * and the chunk has a token to score. The document's first token has no prediction and is left
   * out; so is a resumed chunk's first token when the start carried no logits.
   */
  readonly nll?: number;
  /** Tokens the NLL averages over (0: nothing to score, and no `nll`). */
  readonly nllTokens?: number;
  /** [chunk, vocab] logits when `keepLogits`. */
  readonly logits?: Float32Array;
  /** Logits [vocab] of the chunk's last token. */
  readonly lastLogits: Float32Array;
  /** Milliseconds the model step took. */
  readonly stepMs: number;
  /** Bytes the model adapter's code copied for this step. */
  readonly copiedBytes: number;
}

export async function* fold(model: DecoderModel, cache: KvCache, tokens: Int32Array, options: FoldOptions): AsyncGenerator<FoldStep, void> {
  const { chunkSize } = options;
  const policy = options.policy ?? fullPolicy;
  const total = tokens.length;
  const totalSteps = stepCount(total, chunkSize);
  const vocab = model.layout.vocabSize;
  const first = options.from?.step ?? 0;
  if (!Number.isInteger(first) || first < 0 || first > totalSteps) {
    throw new RangeError(`cannot resume at step ${first}: the fold has ${totalSteps} steps`);
  }
  const expected = tokensAfter(first, total, chunkSize);
  if (cache.tokensSeen !== expected) {
    throw new RangeError(`the cache has read ${cache.tokensSeen} tokens, but step ${first} of this fold follows ${expected}; start from an empty cache or the checkpoint of that step`);
  }
  let lastLogits = options.from?.lastLogits;
  const wantAll = options.nll || options.keepLogits;
  const mode: LogitsMode = wantAll ? 'all' : 'last';

  for (let t = first; t < totalSteps; t++) {
    const { start, end } = chunkSpan(t, total, chunkSize);
    const chunk = tokens.subarray(start, end);
    const n = end - start;
    const began = performance.now();
    const out = await model.step({ tokens: chunk, cache, logits: mode });
    const stepMs = performance.now() - began;

    let scored: { nll: number; nllTokens: number } | { nllTokens: 0 } | undefined;
    if (options.nll) {
      let sum = 0;
      let count = 0;
      if (lastLogits) {
        sum += tokenNll(lastLogits, 0, vocab, chunk[0] as number);
        count++;
      }
      for (let i = 0; i + 1 < n; i++) {
        sum += tokenNll(out.logits, i, vocab, chunk[i + 1] as number);
        count++;
      }
      scored = count ? { nll: sum / count, nllTokens: count } : { nllTokens: 0 };
    }
    lastLogits = wantAll ? out.logits.slice((n - 1) * vocab, n * vocab) : out.logits;
    await policy.afterStep(cache, n);
    yield {
      step: t + 1,
      totalSteps,
      tokens: end,
      kvLength: cache.length,
      kvBytes: cache.bytes,
      start,
      end,
      lastLogits,
      stepMs,
      copiedBytes: out.copiedBytes,
      ...scored,
      ...(options.keepLogits ? { logits: out.logits } : {}),
    };
  }
}

/** Runs a fold to the end; returns the last logits and each step's info. */
export async function foldAll(
  model: DecoderModel,
  cache: KvCache,
  tokens: Int32Array,
  options: FoldOptions,
  onStep?: (step: FoldStep) => void,
): Promise<{ lastLogits: Float32Array | undefined; steps: FoldStep[] }> {
  const steps: FoldStep[] = [];
  let lastLogits = options.from?.lastLogits;
  for await (const s of fold(model, cache, tokens, options)) {
    onStep?.(s);
    steps.push(s);
    lastLogits = s.lastLogits;
  }
  return { lastLogits, steps };
}
