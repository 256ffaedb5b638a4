/**
 * FoldProgress: the object a worker passes to `job.updateProgress` after each fold step, and
 * BatchCancelledError, what it throws when it stops because its batch was cancelled.
 */
import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { JobsErrorCode } from './errors.ts';
import { intAtLeast } from '@kvfold/contract';

/** Progress of one document's fold. */
export const FoldProgress = z.object({
  /** Tokens folded so far (resumed ones included). */
  tokens: intAtLeast(0),
  /** Tokens of the whole document. */
  totalTokens: intAtLeast(0),
  /** Fold steps done. */
  step: intAtLeast(0),
  /** Fold steps in all. */
  totalSteps: intAtLeast(0),
  /** The worker's estimate of the time left for this document, or null when unknown. */
  etaMs: z.number().min(0).nullable(),
});
export type FoldProgress = z.output<typeof FoldProgress>;

/** A job's progress as FoldProgress, or null when it reported none (or something else). */
export function foldProgressOf(progress: unknown): FoldProgress | null {
  const parsed = FoldProgress.safeParse(progress);
  return parsed.success ? parsed.data : null;
}

/**
 * Thrown by a worker that stopped folding because `registry.isCancelled(batchId)` turned true.
 * It is an UnrecoverableError, so BullMQ fails the job at once instead of retrying it.
 */
export class BatchCancelledError extends UnrecoverableError {
  readonly code = JobsErrorCode.BatchCancelled;
  constructor(batchId: string, docId: string) {
    super(`${JobsErrorCode.BatchCancelled}: document ${docId} stopped because batch ${batchId} was cancelled`);
    this.name = 'BatchCancelledError';
  }
}
