/** Picks a KV policy from its description: the one place that knows every sibling. */
import { int8Policy } from './int8-policy.ts';
import { fullPolicy, type KvPolicy } from './policy.ts';
import { streamingPolicy } from './streaming-policy.ts';

export type PolicySpec = { readonly kind: 'full' } | { readonly kind: 'streaming'; readonly sink: number; readonly window: number };

/** What the cache holds: the rows as the model produced them, or rounded through int8. */
export type KvStorage = 'f32' | 'int8';

export interface PolicyContext {
  /** RoPE inverse frequencies of the model (needed by streaming's re-rotation). */
  readonly invFreq?: Float64Array;
}

export function createPolicy(spec: PolicySpec, kv: KvStorage = 'f32', context: PolicyContext = {}): KvPolicy {
  if (spec.kind === 'full') return kv === 'int8' ? int8Policy() : fullPolicy;
  if (spec.kind === 'streaming') {
    if (kv === 'int8') throw new RangeError('the int8 KV cache is available with the full policy only');
    if (!context.invFreq) throw new RangeError('the streaming policy needs the model’s RoPE frequencies');
    return streamingPolicy({ sink: spec.sink, window: spec.window, invFreq: context.invFreq });
  }
  throw new RangeError(`unknown KV policy ${JSON.stringify(spec)}`);
}
