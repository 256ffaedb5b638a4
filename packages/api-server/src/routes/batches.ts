/**
 * Batch routes: create (JSON or multipart upload), list, status, cancel, retry, recover.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchId, BatchListQuery } from '@kvfold/contract';
import { readBatchStatus } from '@kvfold/jobs';
import { ProducerError, ProducerErrorCode, recoverBatches, retryBatch } from '@kvfold/producer';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { cancelBatch } from '../cancel-batch.ts';
import { UploadSpec, checkModel, createBatch, parseSpec, parseSpecText, uploadInputs } from '../create-batch.ts';
import type { BatchContext } from '../create-batch.ts';
import { apiErrors } from '../errors.ts';
import { routeSchemas } from '../openapi.ts';
import { spoolUpload } from '../spool-upload.ts';

/** Room for the multipart framing of an upload (part headers, boundaries, the spec field) beyond its files' bytes. */
const MULTIPART_FRAMING_BYTES = 16 * 1024 * 1024;

/** Options of the batch routes. */
export interface BatchRoutesOptions {
  readonly ctx: Omit<BatchContext, 'log'>;
  /** Largest upload, all files together. */
  readonly uploadBytes: number;
}

/** The `:id` param, checked. */
export function batchIdParam(request: FastifyRequest): string {
  const id = (request.params as { id?: string }).id ?? '';
  if (!BatchId.safeParse(id).success) throw apiErrors.notFound(`no batch ${id} (batch ids look like b + 32 hex chars)`);
  return id;
}

/** Registers the batch routes on `app`. */
export async function batchRoutes(app: FastifyInstance, opts: BatchRoutesOptions): Promise<void> {
  const { ctx } = opts;
  // An upload that declares more bytes than the limit allows (its files, and the multipart framing
  // around them) is refused before its body is read.
  const declaredLimit = opts.uploadBytes + MULTIPART_FRAMING_BYTES;
  app.addHook('onRequest', async (request) => {
    if (request.method !== 'POST' || request.routeOptions.url !== '/v1/batches') return;
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > declaredLimit) {
      throw apiErrors.tooLarge(`the upload declares ${declared} bytes, over the limit of ${opts.uploadBytes} bytes of files (KVFOLD_API_UPLOAD_LIMIT); send a smaller corpus or raise the limit`);
    }
  });

  app.post('/v1/batches', { schema: routeSchemas.createBatch }, async (request, reply) => {
    const context = { ...ctx, log: request.log };
    if (!request.isMultipart()) {
      const spec = parseSpec(UploadSpec, request.body ?? {});
      await checkModel(ctx, spec.model);
      const body = await createBatch(context, spec);
      return reply.status(202).send(body);
    }
    const dir = await mkdtemp(join(ctx.spoolDir ?? tmpdir(), 'kvfold-upload-'));
    try {
      const upload = await spoolUpload(() => request.parts(), dir, { totalBytes: opts.uploadBytes }, {
        // The model is checked as soon as the spec arrives: sent ahead of the files (as `kvfold
        // enqueue` sends it), a wrong one is refused before any file is read.
        onSpec: async (text) => checkModel(ctx, parseSpecText(text).model),
      });
      const spec = parseSpecText(upload.spec);
      if (upload.inputs.length === 0 && spec.corpus.length === 0) {
        throw apiErrors.badRequest('corpus: upload at least one file or name a stored corpus in spec.corpus');
      }
      const uploaded = upload.inputs.length > 0 ? await uploadInputs(context, upload.inputs, spec) : undefined;
      if (uploaded) uploaded.report.refused.unshift(...upload.refused);
      const body = await createBatch(context, spec, uploaded);
      return reply.status(202).send(body);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  app.get('/v1/batches', { schema: routeSchemas.listBatches }, async (request) => {
    const query = parseSpec(BatchListQuery, request.query ?? {}, 'query');
    const page = await ctx.registry.list({ limit: query.limit, ...(query.cursor ? { after: query.cursor } : {}) });
    const activeJobs = page.ids.length > 0 ? await ctx.queues.documents.getActive() : [];
    const statuses = await Promise.all(page.ids.map((id) => readBatchStatus(ctx, id, { activeJobs })));
    // A batch removed between the index read and its status read is left out.
    return { batches: statuses.filter((s) => s !== null), nextCursor: page.nextCursor };
  });

  app.get('/v1/batches/:id', { schema: routeSchemas.getBatch }, async (request) => {
    const id = batchIdParam(request);
    const status = await readBatchStatus(ctx, id);
    if (!status) throw apiErrors.notFound(`no batch ${id}`);
    return status;
  });

  app.post('/v1/batches/:id/cancel', { schema: routeSchemas.cancelBatch }, async (request, reply) => {
    const id = batchIdParam(request);
    const { state, removed } = await cancelBatch(ctx, id);
    request.log.info({ batchId: id, state, removed }, 'batch cancel requested');
    return reply.status(202).send({ id, state, removed });
  });

  app.post('/v1/batches/:id/retry', { schema: routeSchemas.retryBatch }, async (request, reply) => {
    const id = batchIdParam(request);
    const answer = await retryBatch(ctx, id).catch((err: unknown) => {
      if (err instanceof ProducerError && err.code === ProducerErrorCode.BatchUnknown) throw apiErrors.notFound(err.message);
      if (err instanceof ProducerError && err.code === ProducerErrorCode.BatchNotEnded) throw apiErrors.conflict(err.message);
      throw err;
    });
    request.log.info({ batchId: id, requeued: answer.requeued }, 'batch retried');
    return reply.status(202).send(answer);
  });

  app.post('/v1/batches/recover', { schema: routeSchemas.recoverBatches }, async (request, reply) => {
    const report = await recoverBatches(ctx);
    request.log.info({ rebuilt: report.rebuilt, requeued: report.requeued.length }, 'batches recovered from the store');
    return reply.status(202).send(report);
  });
}
