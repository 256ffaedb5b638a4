/**
 * The REST API's wire shapes: the answers of its routes and its error body, as zod schemas the API
 * serves (and documents in its OpenAPI) and the client parses, so the two cannot drift apart.
 */
import { z } from 'zod';
import { BATCH_STATES } from './batch-state.ts';

/** Most batches one page of `GET /v1/batches` holds. */
export const MAX_BATCH_PAGE = 100;

const count = z.int().min(0);

/** The status object of `GET /v1/batches/:id`. */
export const BatchStatus = z.object({
  id: z.string(),
  state: z.enum(BATCH_STATES),
  createdAt: z.string(),
  updatedAt: z.string(),
  counts: z.object({
    total: count,
    waiting: count,
    active: count,
    completed: count,
    failed: count,
    cancelled: count,
  }),
  progress: z.object({
    /** Tokens folded (finished documents count whole). */
    tokens: count,
    /** All tokens of the batch; partly estimated from bytes until every document reported. */
    totalTokens: count,
    /** tokens / totalTokens, in [0, 1]. */
    fraction: z.number().min(0).max(1),
  }),
  /** Estimated time to the last document, or null when nothing is being folded. */
  etaMs: z.number().min(0).nullable(),
});
export type BatchStatus = z.output<typeof BatchStatus>;

/** Answer of `POST /v1/batches` (202). */
export const CreatedBatch = z.object({
  id: z.string(),
  state: z.enum(BATCH_STATES),
  documents: z.int().min(0),
  /** Jobs this request added (0 when the same batch was enqueued before). */
  added: z.int().min(0),
  report: z.object({
    skipped: z.array(z.object({ input: z.string(), path: z.string(), reason: z.string() })),
    refused: z.array(z.object({ input: z.string(), entry: z.string(), reason: z.string(), code: z.string() })),
    /** One entry per reason with its count and first names (the lists above hold the first few of each). */
    summary: z
      .array(z.object({ kind: z.enum(['skipped', 'refused']), code: z.string().optional(), reason: z.string(), count: z.int().min(1), first: z.array(z.string()) }))
      .optional(),
    /** Store key of the whole report, every entry listed. */
    key: z.string().optional(),
  }),
});
export type CreatedBatch = z.output<typeof CreatedBatch>;

/** Answer of `POST /v1/batches/:id/cancel` (202). */
export const CancelledBatch = z.object({ id: z.string(), state: z.enum(BATCH_STATES), removed: z.int().min(0) });
export type CancelledBatch = z.output<typeof CancelledBatch>;

/** Answer of `POST /v1/batches/:id/retry` (202): the documents enqueued again. */
export const RetriedBatch = z.object({ id: z.string(), state: z.enum(BATCH_STATES), requeued: z.int().min(0) });
export type RetriedBatch = z.output<typeof RetriedBatch>;

/** Answer of `POST /v1/batches/recover` (202). */
export const RecoveredBatches = z.object({
  /** Batches whose registry entry was rebuilt from the store. */
  rebuilt: z.int().min(0),
  /** Batches enqueued again, each with the documents it got back. */
  requeued: z.array(RetriedBatch),
});
export type RecoveredBatches = z.output<typeof RecoveredBatches>;

/** Query of `GET /v1/batches`: page size and the previous page's cursor. */
export const BatchListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_BATCH_PAGE).default(20),
  cursor: z.string().min(1).optional(),
});
export type BatchListQuery = z.output<typeof BatchListQuery>;

/** Answer of `GET /v1/batches`: statuses, newest batch first. */
export const BatchList = z.object({
  batches: z.array(BatchStatus),
  /** Pass as `cursor` for the next page; null on the last. */
  nextCursor: z.string().nullable(),
});
export type BatchList = z.output<typeof BatchList>;

/** The body of every 4xx/5xx answer. */
export const ApiErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
