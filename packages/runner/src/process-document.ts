/**
 * processDocument(): the one code path that folds a queued document, behind both the queue
 * worker and `kvfold run`. It reads the document from its shard, tokenizes it, folds it with
 * checkpoints (resuming from any stored one), answers the batch's queries, and writes the result.
 *
 * Outcomes: `completed` (result stored), `failed` (the document cannot be folded: the result records
 * why and the batch goes on), or `stopped` (a stop was requested: a checkpoint is committed and the
 * job should be handed back). Which errors fail the document and which are thrown for the caller's
 * retry policy is failures.ts's table.
 */
import { createHash } from 'node:crypto';
import { FingerprintMismatchError } from '@kvfold/checkpoint';
import { KvCacheError, KvCacheErrorCode } from '@kvfold/fold-core';
import { type DocumentJob, DocumentResult, documentResultKey } from '@kvfold/contract';
import type { FoldProgress } from '@kvfold/jobs';
import { type LoadedModel, unknownWarning } from '@kvfold/onnx';
import { TokenFloor, documentName, provenTooLong, readDocument } from '@kvfold/producer';
import type { ObjectStore } from '@kvfold/storage';
import type { Logger } from 'pino';
import { classifyFailure, DocumentErrorCode } from './failures.ts';
import type { Query } from './fold-document.ts';
import type { ModelCache } from './model-cache.ts';
import { resolvePolicy } from './policy-options.ts';
import { foldResumable } from './resumable-fold.ts';

export interface ProcessDeps {
  readonly store: ObjectStore;
  readonly models: ModelCache;
  readonly log: Logger;
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
  readonly onProgress?: (progress: FoldProgress) => void | Promise<void>;
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

class DocumentFailure extends Error {
  constructor(
    readonly code: DocumentErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** How often a fold asks whether its batch was cancelled. */
const CANCEL_POLL_MS = 1000;

export async function processDocument(job: DocumentJob, deps: ProcessDeps, control: ProcessControl): Promise<ProcessOutcome> {
  const started = performance.now();
  const log = deps.log.child({ batchId: job.batchId, docId: job.docId });
  const base = { batchId: job.batchId, docId: job.docId, paths: job.paths, chunkSize: job.fold.chunkSize, attempts: control.attempt };
  let tokens = 0;
  try {
    const text = await readDocument(deps.store, job.shard, job.docId);
    const loadMs = performance.now() - started;
    const model = await deps.models.get(job.fold.model);
    refuseProvenTooLong(job, model, text);
    const encoded = model.tokenizer.encode(text, { document: true });
    const ids = encoded.ids;
    const warnings = encoded.unknown ? [unknownWarning(`document ${documentName(job.paths)}`, encoded.unknown, model.folder.dir)] : [];
    if (warnings.length) log.warn({ warnings }, 'text maps to <unk>');
    tokens = ids.length;
    checkLength(job, model, ids.length);
    const queries = encodeQueries(job, model);
    const { policy, name: policyName } = choosePolicy(job, model);

    let cancelled = false;
    let lastPoll = 0;
    const totalSteps = Math.ceil(ids.length / job.fold.chunkSize);
    const run = (fresh: boolean) =>
      foldResumable({
        model: model.decoder,
        tokens: ids,
        chunkSize: job.fold.chunkSize,
        queries,
        maxNewTokens: job.fold.maxNewTokens,
        stopTokens: model.stopTokens,
        ...(job.fold.sampling ? { sampling: job.fold.sampling } : {}),
        ...(job.fold.stop.length ? { stopStrings: job.fold.stop } : {}),
        decode: (t) => model.tokenizer.decode(t),
        policy,
        policyName,
        fingerprints: model.fingerprints,
        checkpoint: {
          store: deps.store,
          docKey: `${job.docId}-${settingsKey(job)}`,
          everySteps: job.fold.checkpointEvery,
          codec: job.fold.kvCodec,
          writerId: control.writerId,
          ...(fresh ? { fresh: true } : {}),
        },
        shouldStop: () => cancelled || control.shouldStop?.() === true,
        onResume: (r) => log.info({ step: r.step, tokens: r.tokens, warnings: r.warnings }, 'resuming from checkpoint'),
        onStep: async (s) => {
          await deps.metrics?.recordStep(s.stepMs / 1000, s.end - s.start);
          await control.onProgress?.({
            tokens: s.tokens,
            totalTokens: ids.length,
            step: s.step,
            totalSteps,
            etaMs: etaMs(s.stepMs, totalSteps - s.step),
          });
          if (control.isCancelled && performance.now() - lastPoll > CANCEL_POLL_MS) {
            lastPoll = performance.now();
            cancelled = await control.isCancelled();
          }
        },
      });
    const folded = await run(false).catch((err: unknown) => {
      // A cache the machine cannot hold fails this document alone, before anything is allocated.
      if (err instanceof KvCacheError && err.code === KvCacheErrorCode.NoMemory) throw new DocumentFailure(DocumentErrorCode.NoMemory, `document ${documentName(job.paths)} (${ids.length} tokens): ${err.message}`);
      if (!(err instanceof FingerprintMismatchError)) throw err;
      log.warn({ field: err.field }, 'stored checkpoint was made with other settings; starting over');
      return run(true);
    });
    await deps.metrics?.recordCheckpoint(folded.checkpoint.bytes);
    if (folded.stoppedAt !== undefined) {
      return cancelled ? { kind: 'cancelled', step: folded.stoppedAt } : { kind: 'stopped', step: folded.stoppedAt };
    }
    const result = DocumentResult.parse({
      ...base,
      status: 'completed',
      policy: policyName,
      tokens: folded.tokens,
      steps: folded.steps,
      timings: {
        loadMs,
        foldMs: folded.timings.foldMs,
        generateMs: folded.timings.generateMs,
        totalMs: performance.now() - started,
        tokensPerSecond: folded.timings.tokensPerSecond,
      },
      kvBytes: folded.kvBytes,
      answers: folded.answers.map(({ query, text, tokenIds }) => ({ query, text, tokenIds })),
      resumedFromStep: folded.resumedFromStep,
      checkpoint: { segments: folded.checkpoint.segments, bytes: folded.checkpoint.bytes },
      ...(warnings.length ? { warnings } : {}),
    });
    await writeResult(deps.store, result);
    const cleanupFailed = await finalizeCheckpoint(() => folded.finalize({ keepFinal: job.fold.keepFinalState }), log);
    log.info({ tokens: result.tokens, steps: result.steps, resumedFromStep: result.resumedFromStep }, 'document folded');
    return { kind: 'completed', result, cleanupFailed };
  } catch (err) {
    const verdict = err instanceof DocumentFailure ? ({ kind: 'permanent', as: err.code } as const) : classifyFailure(err);
    if (verdict.kind === 'transient') throw err;
    const message = (err as Error).message;
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

/**
 * Deletes (or, for keepFinal, trims) the checkpoint once the result is stored. The document is done
 * by then, so a store that refuses the deletes costs only space: a warning, not a failed job.
 * Returns whether it failed.
 */
async function finalizeCheckpoint(finalize: () => Promise<void>, log: Logger): Promise<boolean> {
  try {
    await finalize();
    return false;
  } catch (err) {
    log.warn({ err }, 'result stored, but its checkpoint could not be cleaned up; delete it from the store later');
    return true;
  }
}

/** Each model's vocabulary as pieces (token-floor.ts), built on first use; undefined where it proves nothing. */
const floors = new WeakMap<LoadedModel, TokenFloor | undefined>();

/** The most document tokens the model's positions leave room for, answers included (full policy only). */
function positionsLeft(job: DocumentJob, model: LoadedModel): number {
  return job.fold.policy.kind === 'full' ? model.decoder.layout.maxPositions - job.fold.maxNewTokens : Number.POSITIVE_INFINITY;
}

/** The most tokens a document of `job` may have on `model`. */
function tokenLimit(job: DocumentJob, model: LoadedModel): number {
  return Math.max(0, Math.min(job.fold.maxTokensPerDocument, positionsLeft(job, model)));
}

/**
 * Fails a document the model's vocabulary proves too long before it is tokenized, so no worker
 * spends a tokenizer pass only to reject it. The producer refuses these at ingest when it can read
 * the model; this covers models only the workers see.
 */
function refuseProvenTooLong(job: DocumentJob, model: LoadedModel, text: string): void {
  if (!floors.has(model)) floors.set(model, TokenFloor.of(model.folder.tokenizerJson));
  const floor = floors.get(model);
  const limit = tokenLimit(job, model);
  const lower = floor ? provenTooLong(text, { maxTokens: limit, floor }) : undefined;
  if (lower === undefined) return;
  throw new DocumentFailure(
    DocumentErrorCode.TooLong,
    `document ${documentName(job.paths)} has at least ${lower} tokens (the fewest pieces of the model's vocabulary its text can be cut into), ` +
      `over the limit of ${limit} (maxTokensPerDocument, or the model's positions less the answers); split it or raise the limit`,
  );
}

function checkLength(job: DocumentJob, model: LoadedModel, n: number): void {
  if (n === 0) throw new DocumentFailure(DocumentErrorCode.Empty, `document ${documentName(job.paths)} has no tokens`);
  const limit = job.fold.maxTokensPerDocument;
  if (n > limit) {
    throw new DocumentFailure(DocumentErrorCode.TooLong, `document ${documentName(job.paths)} has ${n} tokens, over the batch's limit of ${limit} (maxTokensPerDocument); split it or raise the limit`);
  }
  if (n > positionsLeft(job, model)) {
    const max = model.decoder.layout.maxPositions;
    throw new DocumentFailure(DocumentErrorCode.TooLong, `document ${documentName(job.paths)} has ${n} tokens; with answers it exceeds the model's ${max} positions; split it or use the streaming policy`);
  }
}

/** The batch's KV policy for this model; a combination the model or fold-core refuses fails the document. */
function choosePolicy(job: DocumentJob, model: LoadedModel): ReturnType<typeof resolvePolicy> {
  try {
    return resolvePolicy(model, { spec: job.fold.policy, kv: job.fold.kv });
  } catch (err) {
    throw new DocumentFailure(DocumentErrorCode.Policy, `policy ${JSON.stringify(job.fold.policy)} (kv ${job.fold.kv}) of batch ${job.batchId} on model ${job.fold.model}: ${(err as Error).message}`);
  }
}

function encodeQueries(job: DocumentJob, model: LoadedModel): Query[] {
  return job.fold.queries.map((q) => ({
    text: q,
    tokens: job.fold.chatTemplate && model.tokenizer.hasChatTemplate ? model.tokenizer.encodeChat([{ role: 'user', content: q }], { continuing: true }) : model.tokenizer.encodeContinuation(q),
  }));
}

/** The settings that change the folded state, hashed: checkpoints of other settings never collide. */
function settingsKey(job: DocumentJob): string {
  const f = job.fold;
  const model = typeof f.model === 'string' ? f.model : `${f.model.uri}#${'fingerprint' in f.model ? f.model.fingerprint : ''}`;
  return createHash('sha256').update(JSON.stringify([model, f.chunkSize, f.policy, f.kv, f.kvCodec])).digest('hex').slice(0, 16);
}

function etaMs(lastStepMs: number, stepsLeft: number): number {
  return Math.round(lastStepMs * stepsLeft);
}

async function writeResult(store: ObjectStore, result: DocumentResult): Promise<void> {
  await store.put(documentResultKey(result.batchId, result.docId), new TextEncoder().encode(`${JSON.stringify(result)}\n`), { contentType: 'application/json' });
}
