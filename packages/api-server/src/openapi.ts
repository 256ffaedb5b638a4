/**
 * OpenAPI: @fastify/swagger collects the route schemas, swagger-ui serves them at /docs (the
 * document itself at /docs/json). Request and response schemas are generated from the same zod
 * schemas that validate them, so the document cannot drift from the code.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { ApiErrorBody, BatchList, BatchListQuery, BatchStatus, CancelledBatch, CreatedBatch, DocumentResult, RecoveredBatches, RetriedBatch } from '@kvfold/contract';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { UploadSpec } from './create-batch.ts';

/** An OpenAPI 3.0 schema object for `schema` as clients write it (defaults optional). */
export function openApiSchema(schema: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...json } = z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' }) as Record<string, unknown>;
  return json;
}

const error = openApiSchema(ApiErrorBody);
const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, { description: 'error', ...error }]));
/** The create answer, with what `added` counts spelled out for clients. */
const CreatedBatchDoc = CreatedBatch.extend({
  added: CreatedBatch.shape.added.describe(
    'queue jobs this request added: one per document plus the batch job when the batch is new; 0 when the same batch (same corpus contents and settings) was created before',
  ),
});

const batchId = { type: 'object', properties: { id: { type: 'string', pattern: '^b[0-9a-f]{32}$' } }, required: ['id'] };

/** Route schemas, for the document only (validation is zod's, in the handlers). */
export const routeSchemas = {
  createBatch: {
    summary: 'Create a batch from stored corpora (JSON) or from uploaded files and archives (multipart)',
    tags: ['batches'],
    body: {
      content: {
        'application/json': { schema: openApiSchema(UploadSpec, 'input') },
        'multipart/form-data': {
          schema: {
            type: 'object',
            properties: {
              spec: { type: 'string', description: 'the batch spec as JSON (corpus may be omitted)' },
              file: { type: 'string', format: 'binary', description: 'files, .tar/.tar.gz/.zip archives or .jsonl; repeat the part per file' },
            },
            required: ['spec'],
          },
        },
      },
    },
    response: { 202: { description: 'accepted', ...openApiSchema(CreatedBatchDoc) }, ...errors(400, 401, 413, 415, 429) },
  },
  listBatches: {
    summary: 'Batches, newest first, a page at a time (pass nextCursor back as cursor)',
    tags: ['batches'],
    querystring: openApiSchema(BatchListQuery, 'input'),
    response: { 200: { description: 'one page', ...openApiSchema(BatchList) }, ...errors(400, 401, 429) },
  },
  getBatch: {
    summary: 'Batch status: state, per-document counts, token progress, ETA',
    tags: ['batches'],
    params: batchId,
    response: { 200: { description: 'status', ...openApiSchema(BatchStatus) }, ...errors(401, 404, 429) },
  },
  cancelBatch: {
    summary: 'Cancel a batch: waiting documents are removed, active ones stop at their next fold step',
    tags: ['batches'],
    params: batchId,
    response: { 202: { description: 'cancelling', ...openApiSchema(CancelledBatch) }, ...errors(401, 404, 409, 429) },
  },
  retryBatch: {
    summary: "Retry an ended batch: its documents without a completed result (failed, cancelled) are enqueued again and resume from their checkpoints",
    tags: ['batches'],
    params: batchId,
    response: { 202: { description: 'queued again', ...openApiSchema(RetriedBatch) }, ...errors(401, 404, 409, 429) },
  },
  recoverBatches: {
    summary: 'Rebuild the registry from the object store and enqueue again the unfinished documents of every batch whose queue state Redis lost',
    tags: ['batches'],
    response: { 202: { description: 'recovered', ...openApiSchema(RecoveredBatches) }, ...errors(401, 429) },
  },
  getResults: {
    summary: 'The batch results as JSONL (results.jsonl once finalized, else the results written so far)',
    tags: ['results'],
    params: batchId,
    produces: ['application/x-ndjson'],
    response: { 200: { description: 'one DocumentResult (or stub) per line', type: 'string' }, ...errors(401, 404, 429) },
  },
  getDocument: {
    summary: "One document's result",
    tags: ['results'],
    params: {
      type: 'object',
      properties: { id: { type: 'string' }, docId: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
      required: ['id', 'docId'],
    },
    response: { 200: { description: 'result', ...openApiSchema(DocumentResult) }, ...errors(401, 404, 429) },
  },
  healthz: { summary: 'Liveness: the process answers', tags: ['operations'] },
  readyz: { summary: 'Readiness: Redis answers PING and the object store is reachable', tags: ['operations'] },
  metrics: { summary: 'Prometheus metrics (text exposition format)', tags: ['operations'], produces: ['text/plain'] },
} as const;

/** Registers swagger (collecting routes registered after it) and the UI at /docs. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'KV-Fold API', version: '0.1.0', description: 'Batch folding of long documents through a frozen LLM.' },
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ apiKey: [] }, { bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
