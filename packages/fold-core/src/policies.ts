/** Picks a KV policy from its description: the one place that knows every sibling. */
import { int8Policy } from './int8.ts';
import type { KvState } from './kv-state.ts';
import { fullPolicy, type KvPolicy } from './policy.ts';
import { streamingPolicy } from './streaming.ts';

export type PolicySpec = { readonly kind: 'full' } | { readonly kind: 'streaming'; readonly sink: number; readonly window: number };

/** How the accumulator stores K/V: as the model produces it, or int8 with per-channel scales. */
export type KvStorage = 'f32' | 'int8';

export interface PolicyContext {
  /** RoPE inverse frequencies of the model (needed by streaming's re-rotation). */
  readonly invFreq?: Float64Array;
}

// biome-ignore lint/suspicious/noExplicitAny: each sibling has its own state type; callers pass it back unchanged.
export type AnyKvPolicy = KvPolicy<any>;

export function createPolicy(spec: PolicySpec, kv: KvStorage = 'f32', context: PolicyContext = {}): AnyKvPolicy {
  if (spec.kind === 'full') return kv === 'int8' ? int8Policy() : (fullPolicy as KvPolicy<KvState>);
  if (spec.kind === 'streaming') {
    if (kv === 'int8') throw new RangeError('the int8 KV cache is available with the full policy only');
    if (!context.invFreq) throw new RangeError('the streaming policy needs the model’s RoPE frequencies');
    return streamingPolicy({ sink: spec.sink, window: spec.window, invFreq: context.invFreq });
  }
  throw new RangeError(`unknown KV policy ${JSON.stringify(spec)}`);
}
