/**
 * KV policies decide what the accumulator keeps after each step and how it is stored.
 *
 * A policy owns a state type `S`: `admit` folds a step's new rows into it and `view` gives the
 * cache the next step attends to, in the layout the model takes. Siblings, picked by `createPolicy`:
 *
 *   full       keeps every row; the fold is exact (its cache equals a single pass's cache)
 *   streaming  StreamingLLM: the first `sink` rows plus the most recent `window` (streaming.ts)
 *   int8       every row, stored as int8 with per-channel scales, dequantized per step (int8.ts)
 */
import { appendRows, emptyKv, type KvLayout, type KvRows, type KvState, kvBytes } from './kv-state.ts';

export interface KvPolicy<S = KvState> {
  readonly name: string;
  /** True when every state extends the previous one, so checkpoints can be append-only segments. */
  readonly appendOnly: boolean;
  init(layout: KvLayout): S;
  /** The state after admitting a step's new rows (`rows.rows` tokens at positions from `nextPosition`). */
  admit(state: S, rows: KvRows): S;
  /** The cache the next step attends to. */
  view(state: S): KvState;
  /** Bytes the state holds. */
  bytes(state: S): number;
  /** Rows held. */
  length(state: S): number;
  /** The policy's state holding exactly the rows of `kv` (e.g. read back from a checkpoint). */
  restore(kv: KvState): S;
}

export const fullPolicy: KvPolicy<KvState> = {
  name: 'full',
  appendOnly: true,
  init: emptyKv,
  admit: appendRows,
  view: (s) => s,
  bytes: kvBytes,
  length: (s) => s.length,
  restore: (s) => s,
};
