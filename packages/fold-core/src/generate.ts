/**
 * Generation from a folded cache. The cache is marked before the question and rewound after the
 * answer, so every question reads the same folded state and nothing a question appends is seen by
 * another; no copy of the cache is made. The last generated token is never fed back (its rows
 * would serve nothing).
 */
import type { KvCache } from './kv-cache.ts';
import type { DecoderModel } from './model.ts';
import { greedy, sampler, type SamplingOptions } from './sampling.ts';

export interface GenerateOptions {
  readonly maxNewTokens: number;
  /** Generation stops when one of these is produced; it is not part of the answer. */
  readonly stopTokens?: readonly number[];
  /** Sample instead of taking the argmax (default: greedy). */
  readonly sampling?: SamplingOptions;
  /**
   * Generation stops once the decoded answer contains one of these; `text` then ends before it
   * (the tokens that spelled it stay in `tokenIds`). Needs `decode`.
   */
  readonly stopStrings?: readonly string[];
  readonly decode?: (ids: readonly number[]) => string;
}

export type StopReason = 'stop-token' | 'stop-string' | 'max-new-tokens';

export interface Generation {
  readonly tokenIds: number[];
  readonly stopReason: StopReason;
  /** The decoded answer, when `decode` is given (cut before a stop string). */
  readonly text?: string;
}

/** Reads `prompt` after the cache, then appends the picked token until a stop or the limit; rewinds the cache to where it was. */
export async function generate(model: DecoderModel, cache: KvCache, prompt: Int32Array, options: GenerateOptions): Promise<Generation> {
  if (prompt.length === 0) throw new RangeError('a query needs at least one token');
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 0) {
    throw new RangeError(`maxNewTokens must be an integer >= 0, got ${options.maxNewTokens}`);
  }
  const stopStrings = (options.stopStrings ?? []).filter((s) => s.length > 0);
  const decode = options.decode;
  if (stopStrings.length && !decode) throw new RangeError('stop strings need a decode function');
  const pick = options.sampling ? sampler(options.sampling) : greedy;
  const stops = new Set(options.stopTokens ?? []);
  const vocab = model.layout.vocabSize;
  const tokenIds: number[] = [];
  const done = (stopReason: StopReason, text = decode?.(tokenIds)): Generation => ({ tokenIds, stopReason, ...(text !== undefined ? { text } : {}) });
  const mark = cache.mark();
  try {
    let input = prompt;
    while (tokenIds.length < options.maxNewTokens) {
      const out = await model.step({ tokens: input, cache, logits: 'last' });
      const next = pick(out.logits, 0, vocab);
      if (stops.has(next)) return done('stop-token');
      tokenIds.push(next);
      if (stopStrings.length) {
        const text = (decode as (ids: readonly number[]) => string)(tokenIds);
        const at = Math.min(...stopStrings.map((s) => text.indexOf(s)).filter((i) => i >= 0));
        if (Number.isFinite(at)) return done('stop-string', text.slice(0, at));
      }
      input = Int32Array.of(next);
    }
    return done('max-new-tokens');
  } finally {
    await cache.rewind(mark);
  }
}

/** Rows a question of `promptTokens` tokens and its answer add to a cache (the last token is never fed back). */
export function generationRows(promptTokens: number, maxNewTokens: number): number {
  return maxNewTokens === 0 ? 0 : promptTokens + maxNewTokens - 1;
}
