/**
 * Creating a batch: resolve the corpora (stored ones by key, uploaded ones through ingest and
 * uploadCorpus), derive the deterministic batch id, record it (registry and store), store its spec,
 * enqueue it.
 * The same corpora and spec always give the same id; a second request adds nothing.
 */
import { BatchSettings, BatchSpec, batchIngestReportKey, batchSpecKey, formatZodError } from '@kvfold/contract';
import { writeBatchRecord } from '@kvfold/jobs';
import type { BatchRegistry, KvfoldQueues } from '@kvfold/jobs';
import type { BatchState, CorpusIndex, IngestSummary } from '@kvfold/contract';
import { checkModelRef, enqueueBatch, ingest, planBatch, readCorpusIndex, reportExamples, summarizeReport, tokenBudgetFor, uploadCorpus } from '@kvfold/producer';
import type { EnqueueOptions, IngestReport, ReasonSummary, RefusedEntry, SkippedEntry } from '@kvfold/producer';
import { ObjectNotFoundError } from '@kvfold/storage';
import type { ObjectStore, OpenStoreOptions } from '@kvfold/storage';
import type { FastifyBaseLogger } from 'fastify';
import { z } from 'zod';
import { apiErrors } from './errors.ts';
import type { SpooledInput } from './spool-upload.ts';

/** A spec sent with an upload: like BatchSpec, but `corpus` may be left out (the upload is the corpus). */
export const UploadSpec = BatchSettings.extend({
  corpus: z.array(z.string().min(1, { error: 'must not be empty' }), { error: 'must be an array of corpus refs' }).default([]),
});

/** What the producer side needs. */
export interface BatchContext {
  readonly store: ObjectStore;
  readonly queues: KvfoldQueues;
  readonly registry: BatchRegistry;
  readonly log: FastifyBaseLogger;
  /** Where ingest spools shards. */
  readonly spoolDir?: string;
  readonly enqueue?: EnqueueOptions;
  /** Check the spec's model before anything is recorded or enqueued (with these store options for `s3://` models); off when absent. */
  readonly modelCheck?: { readonly storeOptions?: OpenStoreOptions };
}

/** The 202 answer. */
export interface CreatedBatchBody {
  readonly id: string;
  readonly state: BatchState;
  readonly documents: number;
  readonly added: number;
  /**
   * What ingest left out: the first few entries of each reason, one summary line per reason, and
   * the store key of the whole report (every entry) when anything was left out.
   */
  readonly report: { readonly skipped: SkippedEntry[]; readonly refused: RefusedEntry[]; readonly summary: ReasonSummary[]; readonly key?: string };
}

/** Parses a spec (JSON value) or a query with `schema`, answering 400 with every bad field named. */
export function parseSpec<S extends z.ZodType>(schema: S, value: unknown, what: 'batch spec' | 'query' = 'batch spec'): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw apiErrors.badRequest(`invalid ${what}: ${formatZodError(parsed.error)}`);
  return parsed.data;
}

/** Parses the text of a multipart `spec` field. */
export function parseSpecText(text: string | undefined): z.output<typeof UploadSpec> {
  if (text === undefined) throw apiErrors.badRequest('spec: missing form field (send the batch spec as JSON in a field named "spec")');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw apiErrors.badRequest(`spec: not JSON (${(err as Error).message})`);
  }
  return parseSpec(UploadSpec, value);
}

/** Refuses (400 KVF_ENQUEUE_MODEL) a spec whose model is not there, when the context checks models. */
export async function checkModel(ctx: Pick<BatchContext, 'modelCheck'>, model: BatchSpec['model']): Promise<void> {
  if (ctx.modelCheck) await checkModelRef(model, ctx.modelCheck.storeOptions);
}

/** Ingests and uploads spooled inputs as one corpus; returns its index and the report in client names. */
export async function uploadInputs(ctx: BatchContext, inputs: readonly SpooledInput[], spec: Pick<BatchSpec, 'grouping' | 'model' | 'maxTokensPerDocument'>) {
  const { grouping } = spec;
  const tokenBudget = await tokenBudgetFor(spec.model, spec.maxTokensPerDocument);
  const run = ingest(
    inputs.map((i) => i.path),
    { grouping, tokenBudget, ...(ctx.spoolDir ? { spoolDir: ctx.spoolDir } : {}) },
  );
  const uploaded = await uploadCorpus(ctx.store, run, { grouping, ...(ctx.spoolDir ? { spoolDir: ctx.spoolDir } : {}) });
  return { index: uploaded.index, indexKey: uploaded.indexKey, report: renameInputs(run.report, inputs) };
}

/** The report with spool paths replaced by the names the client sent. */
function renameInputs(report: IngestReport, inputs: readonly SpooledInput[]): IngestReport {
  const names = new Map(inputs.map((i) => [i.path, i.name]));
  const name = (input: string) => names.get(input) ?? input;
  return {
    ...report,
    inputs: report.inputs.map(name),
    skipped: report.skipped.map((s) => ({ ...s, input: name(s.input) })),
    refused: report.refused.map((r) => ({ ...r, input: name(r.input) })),
  };
}

/** Reads a stored corpus by key (or by a URI under this store), answering 400 when it is not there. */
async function readStoredCorpus(store: ObjectStore, ref: string): Promise<CorpusIndex> {
  let key = ref;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) {
    const base = store.uri.endsWith('/') ? store.uri : `${store.uri}/`;
    if (!ref.startsWith(base)) throw apiErrors.badRequest(`corpus: ${ref} is not in this API's store ${store.uri}; give a key such as corpora/<id>/index.json`);
    key = ref.slice(base.length);
  }
  try {
    return await readCorpusIndex(store, key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw apiErrors.badRequest(`corpus: no corpus index ${key} in the store (upload the corpus first)`);
    throw err;
  }
}

/**
 * Creates (or finds) the batch of `spec` over its stored corpora plus `uploaded`, and enqueues it
 * when it is new. The caller checks the model first ({@link checkModel}), before any upload. `ingestReport` is summarised into the registry record.
 */
export async function createBatch(
  ctx: BatchContext,
  spec: z.output<typeof UploadSpec>,
  uploaded?: { readonly index: CorpusIndex; readonly indexKey: string; readonly report: IngestReport },
): Promise<CreatedBatchBody> {
  const indexes: CorpusIndex[] = [];
  for (const ref of spec.corpus) indexes.push(await readStoredCorpus(ctx.store, ref));
  if (uploaded) indexes.push(uploaded.index);
  const corpus = [...spec.corpus, ...(uploaded ? [uploaded.indexKey] : [])];
  const full = parseSpec(BatchSpec, { ...spec, corpus });
  const plan = planBatch(full, indexes);
  const batchId = plan.batchId;
  const log = ctx.log.child({ batchId });

  const documents = plan.jobs.length;
  const totalBytes = plan.jobs.reduce((a, j) => a + j.bytes, 0);
  const report = uploaded?.report;
  const ingestSummary: IngestSummary = {
    files: report?.files ?? 0,
    documents: report?.documents ?? 0,
    bytes: report?.bytes ?? 0,
    ignored: report?.ignored ?? 0,
    skipped: report?.skipped.length ?? 0,
    refused: report?.refused.length ?? 0,
  };
  const { created, entry } = await ctx.registry.create({
    id: batchId,
    spec: full,
    createdAt: new Date().toISOString(),
    documents,
    totalBytes,
    corpusIds: [...new Set(indexes.map((i) => i.corpusId))],
    corpus,
    ingest: ingestSummary,
  });

  let state = entry.state;
  let added = 0;
  if (created || entry.state === 'validating') {
    try {
      // The store is the source of truth: the record goes there before anything is queued.
      await writeBatchRecord(ctx.store, entry.record);
      await ctx.store.put(batchSpecKey(batchId), new Uint8Array(Buffer.from(`${JSON.stringify(full, null, 1)}\n`)), { contentType: 'application/json' });
      added = (await enqueueBatch(ctx.queues, plan, ctx.enqueue)).added;
      state = await ctx.registry.setState(batchId, 'queued');
    } catch (err) {
      await ctx.registry.setState(batchId, 'failed');
      throw err;
    }
    log.info({ documents, added }, 'batch enqueued');
  } else {
    log.info({ state }, 'batch already exists; nothing enqueued');
  }
  const skipped = report?.skipped ?? [];
  const refused = report?.refused ?? [];
  let key: string | undefined;
  if (skipped.length + refused.length > 0) {
    key = batchIngestReportKey(batchId);
    await ctx.store.put(key, new Uint8Array(Buffer.from(`${JSON.stringify(report, null, 1)}\n`)), { contentType: 'application/json' });
  }
  return {
    id: batchId,
    state,
    documents: entry.record.documents,
    added,
    report: {
      ...reportExamples({ skipped, refused }),
      summary: summarizeReport({ skipped, refused }),
      ...(key ? { key } : {}),
    },
  };
}
