/** Picks a KV policy from its description: the one place that knows every sibling. */
import { fullPolicy, type KvPolicy } from './policy.ts';
import { streamingPolicy } from './streaming-policy.ts';

export type PolicySpec = { readonly kind: 'full' } | { readonly kind: 'streaming'; readonly sink: number; readonly window: number };

export interface PolicyContext {
  /** RoPE inverse frequencies of the model (needed by streaming's re-rotation). */
  readonly invFreq?: Float64Array;
}

export function createPolicy(spec: PolicySpec, context: PolicyContext = {}): KvPolicy {
  if (spec.kind === 'full') return fullPolicy;
  if (spec.kind === 'streaming') {
    if (!context.invFreq) throw new RangeError('the streaming policy needs the model’s RoPE frequencies');
    return streamingPolicy({ sink: spec.sink, window: spec.window, invFreq: context.invFreq });
  }
  throw new RangeError(`unknown KV policy ${JSON.stringify(spec)}`);
}
