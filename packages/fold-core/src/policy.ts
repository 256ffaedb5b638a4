/**
 * KV policies decide what the accumulator keeps after each step.
 *
 * `full` keeps every row: the fold is then exact (the cache equals a single pass's cache).
 * Other policies (a StreamingLLM window, an int8-stored cache) are siblings implementing the
 * same interface, picked by `createPolicy`.
 */
import { appendRows, type KvRows, type KvState } from './kv-state.ts';

export interface KvPolicy {
  readonly name: string;
  /** True when every state extends the previous one, so checkpoints can be append-only. */
  readonly appendOnly: boolean;
  /** The state after admitting a step's new rows. */
  admit(state: KvState, rows: KvRows): KvState;
}

export const fullPolicy: KvPolicy = {
  name: 'full',
  appendOnly: true,
  admit: appendRows,
};

export type PolicySpec = { readonly kind: 'full' };

export function createPolicy(spec: PolicySpec): KvPolicy {
  switch (spec.kind) {
    case 'full':
      return fullPolicy;
    default:
      throw new RangeError(`unknown KV policy ${JSON.stringify(spec)}`);
  }
}
