/**
 * Result routes: the batch's JSONL and one document's result, read from the object store.
 */
import { Readable } from 'node:stream';
import { DocumentResult, batchResultsKey, docIdOfResultKey, documentResultKey, documentResultsPrefix } from '@kvfold/contract';
import { loadBatchEntry } from '@kvfold/jobs';
import type { BatchRegistry } from '@kvfold/jobs';
import { ObjectNotFoundError } from '@kvfold/storage';
import type { ObjectStore } from '@kvfold/storage';
import type { FastifyInstance } from 'fastify';
import { apiErrors } from '../errors.ts';
import { routeSchemas } from '../openapi.ts';
import { batchIdParam } from './batches.ts';

/** Options of the result routes. */
export interface ResultRoutesOptions {
  readonly store: ObjectStore;
  readonly registry: BatchRegistry;
}

/** The per-document results written so far, one compact JSON line each, in key (docId) order. */
async function* partialResults(store: ObjectStore, batchId: string): AsyncGenerator<string> {
  for await (const info of store.list(documentResultsPrefix(batchId))) {
    if (!docIdOfResultKey(batchId, info.key)) continue;
    let bytes: Uint8Array;
    try {
      bytes = await store.getBytes(info.key);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) continue; // deleted between list and get
      throw err;
    }
    yield `${JSON.stringify(JSON.parse(Buffer.from(bytes).toString('utf8')))}\n`;
  }
}

/** Registers the result routes on `app`. */
export async function resultRoutes(app: FastifyInstance, opts: ResultRoutesOptions): Promise<void> {
  const { store, registry } = opts;

  app.get('/v1/batches/:id/results', { schema: routeSchemas.getResults }, async (request, reply) => {
    const id = batchIdParam(request);
    if (!(await loadBatchEntry({ registry, store }, id))) throw apiErrors.notFound(`no batch ${id}`);
    reply.type('application/x-ndjson');
    const final = batchResultsKey(id);
    if (await store.head(final)) {
      reply.header('x-kvfold-results', 'final');
      return reply.send(await store.get(final));
    }
    reply.header('x-kvfold-results', 'partial');
    return reply.send(Readable.from(partialResults(store, id)));
  });

  app.get('/v1/batches/:id/documents/:docId', { schema: routeSchemas.getDocument }, async (request) => {
    const id = batchIdParam(request);
    const { docId = '' } = request.params as { docId?: string };
    if (!/^[0-9a-f]{64}$/.test(docId)) throw apiErrors.notFound(`no document ${docId} (document ids are 64 hex chars)`);
    if (!(await loadBatchEntry({ registry, store }, id))) throw apiErrors.notFound(`no batch ${id}`);
    try {
      const bytes = await store.getBytes(documentResultKey(id, docId));
      return DocumentResult.parse(JSON.parse(Buffer.from(bytes).toString('utf8')));
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw apiErrors.notFound(`no result yet for document ${docId} of batch ${id}`);
      throw err;
    }
  });
}
