/**
 * Chunk and position arithmetic of the fold, as pure functions.
 *
 * A document of `total` tokens read in chunks of `chunkSize` takes `ceil(total / chunkSize)` steps;
 * step t (0-based) reads tokens [t * chunkSize, min((t + 1) * chunkSize, total)) at positions that
 * continue from the tokens before it.
 */

/** A half-open token range [start, end). */
export interface Span {
  readonly start: number;
  readonly end: number;
}

export function assertChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`chunk size must be an integer >= 1, got ${chunkSize}`);
  }
}

/** Steps needed to fold `total` tokens. */
export function stepCount(total: number, chunkSize: number): number {
  assertChunkSize(chunkSize);
  return Math.ceil(total / chunkSize);
}

/** The token range step `step` reads. */
export function chunkSpan(step: number, total: number, chunkSize: number): Span {
  assertChunkSize(chunkSize);
  const start = step * chunkSize;
  if (!Number.isInteger(step) || step < 0 || start >= total) {
    throw new RangeError(`step ${step} is outside a fold of ${total} tokens in chunks of ${chunkSize}`);
  }
  return { start, end: Math.min(start + chunkSize, total) };
}

/** Every step's range, in order. */
export function chunkSpans(total: number, chunkSize: number): Span[] {
  return Array.from({ length: stepCount(total, chunkSize) }, (_, t) => chunkSpan(t, total, chunkSize));
}

/** Tokens folded once `steps` steps are done. */
export function tokensAfter(steps: number, total: number, chunkSize: number): number {
  assertChunkSize(chunkSize);
  return Math.min(steps * chunkSize, total);
}

/** Position ids of `count` tokens that follow a cache whose next position is `nextPosition`. */
export function positionIds(nextPosition: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => nextPosition + i);
}

/**
 * Chain depth of a token: how many fold steps run after the step that reads it, before a
 * question asked once the document is folded. The needle-in-a-haystack axis of the paper.
 */
export function chainDepth(tokenIndex: number, total: number, chunkSize: number): number {
  const steps = stepCount(total, chunkSize);
  return steps - 1 - Math.floor(tokenIndex / chunkSize);
}
