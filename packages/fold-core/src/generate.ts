/**
 * Generation from a folded cache. The cache is marked before the question and rewound after the
 * answer, so every question reads the same folded state and nothing a question appends is seen by
 * another; no copy of the cache is made. The last generated token is never fed back (its rows
 * would serve nothing).
 */
import type { KvCache } from './kv-cache.ts';
import type { DecoderModel } from './model.ts';
import { argmax } from './nll.ts';

export interface GenerateOptions {
  readonly maxNewTokens: number;
  /** Generation stops when one of these is produced; it is not part of the answer. */
  readonly stopTokens?: readonly number[];
}

export type StopReason = 'stop-token' | 'max-new-tokens';

export interface Generation {
  readonly tokenIds: number[];
  readonly stopReason: StopReason;
}

/** Reads `prompt` after the cache, then appends the argmax token until a stop token or the limit; rewinds the cache to where it was. */
export async function generate(model: DecoderModel, cache: KvCache, prompt: Int32Array, options: GenerateOptions): Promise<Generation> {
  if (prompt.length === 0) throw new RangeError('a query needs at least one token');
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 0) {
    throw new RangeError(`maxNewTokens must be an integer >= 0, got ${options.maxNewTokens}`);
  }
  const stops = new Set(options.stopTokens ?? []);
  const vocab = model.layout.vocabSize;
  const tokenIds: number[] = [];
  const mark = cache.mark();
  try {
    let input = prompt;
    while (tokenIds.length < options.maxNewTokens) {
      const out = await model.step({ tokens: input, cache, logits: 'last' });
      const next = argmax(out.logits, 0, vocab);
      if (stops.has(next)) return { tokenIds, stopReason: 'stop-token' };
      tokenIds.push(next);
      input = Int32Array.of(next);
    }
    return { tokenIds, stopReason: 'max-new-tokens' };
  } finally {
    await cache.rewind(mark);
  }
}

/** Rows a question of `promptTokens` tokens and its answer add to a cache (the last token is never fed back). */
export function generationRows(promptTokens: number, maxNewTokens: number): number {
  return maxNewTokens === 0 ? 0 : promptTokens + maxNewTokens - 1;
}
