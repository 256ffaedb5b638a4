/**
 * Greedy generation from a folded state. The state is a value: every query starts from the same
 * folded cache, and nothing a query appends is seen by another.
 */
import type { KvState } from './kv-state.ts';
import type { DecoderModel } from './model.ts';
import { argmax } from './nll.ts';
import { fullPolicy, type KvPolicy } from './policy.ts';

export interface GenerateOptions<S = KvState> {
  readonly maxNewTokens: number;
  /** Generation stops when one of these is produced; it is not part of the answer. */
  readonly stopTokens?: readonly number[];
  /** The policy the state was folded with (default: full). */
  readonly policy?: KvPolicy<S>;
}

export type StopReason = 'stop-token' | 'max-new-tokens';

export interface Generation {
  readonly tokenIds: number[];
  readonly stopReason: StopReason;
}

/** Reads `prompt` after `state`, then appends the argmax token until a stop token or the limit. */
export async function generate<S = KvState>(model: DecoderModel, state: S, prompt: Int32Array, options: GenerateOptions<S>): Promise<Generation> {
  if (prompt.length === 0) throw new RangeError('a query needs at least one token');
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 0) {
    throw new RangeError(`maxNewTokens must be an integer >= 0, got ${options.maxNewTokens}`);
  }
  const policy = options.policy ?? (fullPolicy as unknown as KvPolicy<S>);
  const stops = new Set(options.stopTokens ?? []);
  const vocab = model.layout.vocabSize;
  const tokenIds: number[] = [];
  let input = prompt;
  let past = state;
  while (tokenIds.length < options.maxNewTokens) {
    const view = policy.view(past);
    const out = await model.step({ tokens: input, past: view, position: view.nextPosition, logits: 'last' });
    const next = argmax(out.logits, 0, vocab);
    if (stops.has(next)) return { tokenIds, stopReason: 'stop-token' };
    tokenIds.push(next);
    if (tokenIds.length === options.maxNewTokens) break;
    past = policy.admit(past, out.rows);
    input = Int32Array.of(next);
  }
  return { tokenIds, stopReason: 'max-new-tokens' };
}
