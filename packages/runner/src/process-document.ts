/**
 * processDocument(): a queued document (a DocumentJob) through the job loop, behind both the queue
 * worker and `kvfold run`. It reads the document from its shard, prepares it (prepare-document.ts),
 * runs the job loop with checkpoints in the batch's store (resuming from any stored one), and
 * writes the document's result beside the batch.
 *
 * Outcomes: `completed` (result stored), `failed` (the document cannot be folded: the result records
 * why and the batch goes on), `stopped` (a stop was requested: a checkpoint is committed and the
 * job should be handed back) or `cancelled`. Which errors fail the document and which are thrown for
 * the caller's retry policy is failures.ts's table.
 */
import { KV_WIDTHS, KvCacheError, KvCacheErrorCode } from '@kvfold/fold-core';
import { checkpointCodecOf, type DocumentJob, DocumentResult, documentResultKey } from '@kvfold/contract';
import { documentName, readDocument } from '@kvfold/producer';
import type { ObjectStore } from '@kvfold/storage';
import type { Logger } from 'pino';
import { checkpointKey } from './checkpoints.ts';
import { classifyFailure } from './failures.ts';
import { type JobProgress, type JobResult, runJob } from './job-loop.ts';
import type { CacheAdmission } from './cache-admission.ts';
import type { ModelCache } from './model-cache.ts';
import { jobSettings, prepareDocument } from './prepare-document.ts';

export interface ProcessDeps {
  readonly store: ObjectStore;
  readonly models: ModelCache;
  readonly log: Logger;
  /** Caps the batch's maxBatchSize (a worker's KVFOLD_MAX_BATCH_SIZE). */
  readonly maxBatchSize?: number;
  /** Shared by the documents this process folds at once: their caches wait for room together. */
  readonly admission?: CacheAdmission;
  /** Fleet metrics (the worker's FoldMetrics); optional for local runs. */
  readonly metrics?: {
    recordStep(seconds: number, tokens: number): Promise<void>;
    recordCheckpoint(bytes: number): Promise<void>;
  };
}

export interface ProcessControl {
  /** 1-based attempt number, recorded in the result. */
  readonly attempt: number;
  /** This attempt's identity for checkpoint fencing (e.g. `<jobId>:<attempt>:<worker>`). */
  readonly writerId: string;
  /** True once the process must stop (SIGTERM): the fold ends after the current step. */
  readonly shouldStop?: () => boolean;
  /** True once the batch was cancelled; polled between steps. */
  readonly isCancelled?: () => Promise<boolean>;
  /** After every fold step. */
  readonly onProgress?: (progress: JobProgress) => void | Promise<void>;
}

export type ProcessOutcome =
  | {
      readonly kind: 'completed';
      readonly result: DocumentResult;
      /** True when the checkpoint could not be deleted after the result was stored (a warning, logged). */
      readonly cleanupFailed: boolean;
    }
  | { readonly kind: 'failed'; readonly result: DocumentResult }
  | { readonly kind: 'stopped'; readonly step: number }
  | { readonly kind: 'cancelled'; readonly step: number };

export async function processDocument(job: DocumentJob, deps: ProcessDeps, control: ProcessControl): Promise<ProcessOutcome> {
  const started = performance.now();
  const log = deps.log.child({ batchId: job.batchId, docId: job.docId });
  const name = `document ${documentName(job.paths)}`;
  const base = { batchId: job.batchId, docId: job.docId, paths: job.paths, chunkSize: job.fold.chunkSize, attempts: control.attempt };
  let tokens = 0;
  try {
    const text = await readDocument(deps.store, job.shard, job.docId);
    const loadMs = performance.now() - started;
    const model = await deps.models.get(job.fold.model, KV_WIDTHS[job.fold.kv]);
    const f = job.fold;
    const doc = prepareDocument(model, text, { ...f, spec: f.policy }, name);
    tokens = doc.tokens.length;
    if (doc.warnings.length) log.warn({ warnings: doc.warnings }, 'document warnings');

    const toResult = (r: JobResult): DocumentResult =>
      DocumentResult.parse({
        ...base,
        status: 'completed',
        policy: doc.policyName,
        tokens: r.tokens,
        steps: r.steps,
        timings: { loadMs, foldMs: r.timings.foldMs, generateMs: r.timings.generateMs, totalMs: performance.now() - started, tokensPerSecond: r.timings.tokensPerSecond },
        kvBytes: r.kvBytes,
        answers: r.answers.map(({ query, text, tokenIds }) => ({ query, text, tokenIds })),
        resumedFromStep: r.resumedFromStep,
        checkpoint: { segments: r.checkpoint.segments, bytes: r.checkpoint.bytes },
        ...(doc.warnings.length ? { warnings: doc.warnings } : {}),
      });
    let stored: DocumentResult | undefined;
    const outcome = await runJob({
      model: model.decoder,
      fingerprints: model.fingerprints,
      tokens: doc.tokens,
      questions: doc.questions,
      limits: doc.limits,
      ...(deps.admission ? { admission: deps.admission } : {}),
      settings: jobSettings(model, doc, { ...f, nll: false, maxBatchSize: Math.min(f.maxBatchSize, deps.maxBatchSize ?? f.maxBatchSize) }),
      checkpoint: {
        store: deps.store,
        key: checkpointKey(job.docId, { ...f, kvCodec: checkpointCodecOf(f) }),
        everySteps: f.checkpointEvery,
        codec: checkpointCodecOf(f),
        writerId: control.writerId,
        onMismatch: 'start-over',
        keepFinal: f.keepFinalState,
      },
      control: {
        ...(control.shouldStop ? { shouldStop: control.shouldStop } : {}),
        ...(control.isCancelled ? { isCancelled: control.isCancelled } : {}),
        onStep: async (p) => {
          await deps.metrics?.recordStep(p.stepMs / 1000, p.stepTokens);
          await control.onProgress?.(p);
        },
        onResume: (r) => log.info({ step: r.step, tokens: r.tokens, warnings: r.warnings }, 'resuming from checkpoint'),
        onStartOver: (field) => log.warn({ field }, 'stored checkpoint was made with other settings; starting over'),
        onCompleted: async (r) => {
          stored = toResult(r);
          await writeResult(deps.store, stored);
        },
        onCleanupFailed: (err) => log.warn({ err }, 'result stored, but its checkpoint could not be cleaned up; delete it from the store later'),
      },
    });
    if (outcome.kind !== 'completed') {
      await deps.metrics?.recordCheckpoint(outcome.checkpoint.bytes);
      return { kind: outcome.kind, step: outcome.step };
    }
    await deps.metrics?.recordCheckpoint(outcome.result.checkpoint.bytes);
    const result = stored as DocumentResult;
    log.info({ tokens: result.tokens, steps: result.steps, resumedFromStep: result.resumedFromStep }, 'document folded');
    return { kind: 'completed', result, cleanupFailed: outcome.cleanupFailed };
  } catch (err) {
    const verdict = classifyFailure(err);
    if (verdict.kind === 'transient') throw err;
    // A cache the machine cannot hold is refused before anything is allocated; say which document.
    const message = err instanceof KvCacheError && err.code === KvCacheErrorCode.NoMemory ? `${name} (${tokens} tokens): ${err.message}` : (err as Error).message;
    const result = DocumentResult.parse({
      ...base,
      status: 'failed',
      tokens,
      steps: 0,
      timings: { loadMs: 0, foldMs: 0, generateMs: 0, totalMs: performance.now() - started, tokensPerSecond: 0 },
      kvBytes: 0,
      answers: [],
      resumedFromStep: 0,
      checkpoint: { segments: 0, bytes: 0 },
      error: { code: verdict.as, message },
    });
    await writeResult(deps.store, result);
    log.warn({ code: verdict.as, cause: (err as { code?: unknown }).code, reason: message }, 'document failed');
    return { kind: 'failed', result };
  }
}

async function writeResult(store: ObjectStore, result: DocumentResult): Promise<void> {
  await store.put(documentResultKey(result.batchId, result.docId), new TextEncoder().encode(`${JSON.stringify(result)}\n`), { contentType: 'application/json' });
}
