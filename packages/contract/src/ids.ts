/**
 * Deterministic identities: batch ids, job ids and priorities. Enqueueing the same batch twice
 * yields the same ids, so BullMQ refuses the duplicates and nothing is folded twice.
 */
import { createHash } from 'node:crypto';
import type { BatchSpec } from './batch-spec.ts';

/** BullMQ's highest priority number (lowest urgency): 2^21 - 1. 0 means "no priority". */
export const PRIORITY_LIMIT = 2 ** 21 - 1;
/** Bytes per priority step: 2^21 steps of 64 B spread priorities over documents up to 128 MiB. */
export const PRIORITY_BYTES_PER_STEP = 64;

/** Lowercase hex sha256 of a string (as UTF-8) or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** JSON with object keys sorted at every level, so equal values always serialise identically. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const json = JSON.stringify(value);
    return json === undefined ? 'null' : json;
  }
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

/**
 * The batch id of `spec` over corpora with content ids `corpusIds`: `b` + 32 hex chars of a sha256
 * over the sorted corpus ids and the spec without its corpus refs (the same content reached
 * through another URI is the same batch). The `b` keeps it from ever being all digits, which
 * BullMQ refuses as a custom job id.
 */
export function deriveBatchId(corpusIds: readonly string[], spec: BatchSpec): string {
  const { corpus: _refs, ...settings } = spec;
  const digest = sha256Hex(stableStringify({ v: 1, corpusIds: [...new Set(corpusIds)].sort(), settings }));
  return `b${digest.slice(0, 32)}`;
}

/** Job id of the flow parent of a batch. */
export function batchJobId(batchId: string): string {
  return batchId;
}

/**
 * Job id of a batch's enqueue gate: a child of its parent job that never runs and holds the parent
 * while the documents are attached in chunks (producer's enqueueBatch); removed once all are.
 */
export function batchGateJobId(batchId: string): string {
  return `${batchId}-gate`;
}

/** Job id of one document of a batch: `<batchId>-<docId>` (BullMQ job ids may not contain ':'). */
export function documentJobId(batchId: string, docId: string): string {
  return `${batchId}-${docId}`;
}

/**
 * BullMQ priority for a document of `length` units (bytes by default): longer documents get
 * smaller numbers and so start first, which keeps the long tail of a batch short.
 * Always within BullMQ's range 1..2^21-1.
 */
export function priorityForLength(length: number, unitsPerStep = PRIORITY_BYTES_PER_STEP): number {
  const steps = Math.floor(Math.max(0, length) / unitsPerStep);
  return Math.min(PRIORITY_LIMIT, Math.max(1, PRIORITY_LIMIT - steps));
}
