/**
 * The lifecycle of a batch, as a small state machine, and the pure rule that derives the current
 * state from what is stored plus what the queue shows.
 *
 *     validating ──> queued ──> in_progress ──> finalizing ──> completed
 *         │            │            │               │
 *         │            │            │               └──> failed
 *         └────────────┴────────────┴──> cancelling ──> cancelled
 *                      (any non-terminal state may also go to failed)
 *
 * - `validating`: the API is ingesting and uploading; no job exists yet.
 * - `queued`: the flow is in Redis, no document has started.
 * - `in_progress`: at least one document is active or finished.
 * - `finalizing`: every document is done; the batch's parent job collects results.jsonl.
 * - `cancelling`: cancel was asked; waiting documents were removed, active ones stop at their next
 *   fold step (workers poll `isCancelled`). It becomes `cancelled` once none is active.
 * - `completed`, `failed`, `cancelled` are terminal. A batch whose documents failed still
 *   `completed`: the failures are in its results. `failed` means the batch itself could not run.
 * - Retry and recover do not move along these edges: they rewrite the entry from the object store
 *   (`BatchRegistry.restore`, as `queued`), the one way out of a terminal state.
 */

/** Every state a batch can be in. */
export const BATCH_STATES = [
  'validating',
  'queued',
  'in_progress',
  'finalizing',
  'completed',
  'failed',
  'cancelling',
  'cancelled',
] as const;

export type BatchState = (typeof BATCH_STATES)[number];

/** States a batch never leaves. */
export const TERMINAL_STATES: ReadonlySet<BatchState> = new Set(['completed', 'failed', 'cancelled']);

/** For each state, the states it may move to. */
export const BATCH_TRANSITIONS: Readonly<Record<BatchState, readonly BatchState[]>> = {
  validating: ['queued', 'failed', 'cancelling'],
  queued: ['in_progress', 'finalizing', 'completed', 'failed', 'cancelling'],
  in_progress: ['finalizing', 'completed', 'failed', 'cancelling'],
  finalizing: ['completed', 'failed'],
  cancelling: ['cancelled', 'failed'],
  completed: [],
  failed: [],
  cancelled: [],
};

/** Whether `from -> to` is a legal move (staying put is always legal). */
export function canTransition(from: BatchState, to: BatchState): boolean {
  return from === to || BATCH_TRANSITIONS[from].includes(to);
}

/** The states `to` may be reached from (used by the registry's atomic compare-and-set). */
export function predecessorsOf(to: BatchState): BatchState[] {
  return BATCH_STATES.filter((from) => BATCH_TRANSITIONS[from].includes(to));
}

/** Whether a state is terminal. */
export function isTerminal(state: BatchState): boolean {
  return TERMINAL_STATES.has(state);
}

/** BullMQ state of a batch's parent job, or `missing` when it does not exist. */
export type ParentJobState =
  | 'waiting-children'
  | 'waiting'
  | 'prioritized'
  | 'delayed'
  | 'active'
  | 'completed'
  | 'failed'
  | 'unknown'
  | 'missing';

/** What the queue shows about a batch, as far as its state is concerned. */
export interface BatchObservation {
  readonly parent: ParentJobState;
  /** Documents being folded now. */
  readonly active: number;
  /** Documents completed, failed or cancelled. */
  readonly finished: number;
}

/**
 * The state a batch is in now, given its stored state and the queue. Terminal and `validating`
 * states are taken as stored; `cancelling` ends when no document is active; otherwise the parent
 * job decides (`completed`/`failed` when it finished, `finalizing` once it is runnable or running)
 * and documents in motion make `in_progress`. The result is always a legal move from `stored`.
 */
export function deriveBatchState(stored: BatchState, seen: BatchObservation): BatchState {
  const next = candidate(stored, seen);
  return canTransition(stored, next) ? next : stored;
}

function candidate(stored: BatchState, seen: BatchObservation): BatchState {
  if (isTerminal(stored) || stored === 'validating') return stored;
  if (stored === 'cancelling') return seen.active === 0 ? 'cancelled' : 'cancelling';
  if (seen.parent === 'completed') return 'completed';
  if (seen.parent === 'failed') return 'failed';
  if (seen.parent === 'active' || seen.parent === 'waiting' || seen.parent === 'prioritized') return 'finalizing';
  if (stored === 'finalizing') return stored;
  if (seen.active > 0 || seen.finished > 0) return 'in_progress';
  return stored;
}
