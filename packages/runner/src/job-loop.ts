/**
 * The job loop: a document's whole life on a model, written once, behind `kvfold fold`,
 * `kvfold run` and the queue worker.
 *
 *     cache   <- a new cache, sized for the document and the questions decoded together
 *     start   <- the stored checkpoint, loaded into the cache (or step 0)
 *     for each chunk after `start`:                      fold-core's fold: the model appends the chunk's rows
 *         score NLL, report progress
 *         commit a checkpoint when due, at the last step, or when stopping
 *         stopped (SIGTERM) or cancelled: end here, committed
 *     answer every question from the folded cache         mark, generate, rewind: no copy
 *     store the result (the caller's), then delete or keep the checkpoint
 *     release the cache
 *
 * Nothing here does I/O of its own: the model, the checkpoint store and the result's sink are
 * passed in. A crash loses at most one checkpoint interval; a stop loses nothing.
 */
import { type DecoderModel, type FoldStep, fold, generateBatch, type KvCache, KvCacheError, KvCacheErrorCode, type KvPolicy, kvRowBytes, type SamplingOptions, stepCount, tokensAfter } from '@kvfold/fold-core';
import type { CacheAdmission } from './cache-admission.ts';
import { type CheckpointIdentity, type CheckpointReport, type CheckpointSettings, openCheckpoints } from './checkpoints.ts';
import { cacheRows, type DocumentLimits } from './document-limits.ts';

/** A question, as text and as the tokens the model reads after the folded document. */
export interface Query {
  readonly text: string;
  readonly tokens: Int32Array;
}

/** How a job folds and answers. */
export interface JobSettings {
  readonly chunkSize: number;
  readonly policy: KvPolicy;
  /** Per-chunk NLL (every position's logits come back). */
  readonly nll: boolean;
  readonly maxNewTokens: number;
  /** Questions decoded together, one model step for all of them (1: one question at a time). */
  readonly maxBatchSize: number;
  readonly stopTokens: readonly number[];
  readonly decode: (ids: readonly number[]) => string;
  /** Sample answers (default greedy); question i draws from seed + i, so each answer is reproducible alone. */
  readonly sampling?: SamplingOptions;
  /** An answer ends before the first of these it spells. */
  readonly stopStrings?: readonly string[];
}

/** What the loop tells its caller, and asks of it, as it runs. */
export interface JobControl {
  /** True once the process must stop (SIGTERM): the fold ends after the current step, committed. */
  readonly shouldStop?: () => boolean;
  /** True once the job's batch was cancelled; asked after a step at most every CANCEL_POLL_MS. */
  readonly isCancelled?: () => Promise<boolean>;
  /** After every fold step (progress bars, job progress, metrics). */
  readonly onStep?: (progress: JobProgress) => void | Promise<void>;
  /** When the fold resumes from a stored checkpoint. */
  readonly onResume?: (info: { step: number; tokens: number; warnings: readonly string[] }) => void;
  /** When a stored checkpoint made with other settings is discarded (`onMismatch: 'start-over'`). */
  readonly onStartOver?: (field: string) => void;
  /** Stores the finished result; the checkpoint is deleted (or kept final) only once this returns. */
  readonly onCompleted?: (result: JobResult) => Promise<void>;
  /** When the checkpoint could not be deleted after the result was stored (the document is done: a warning). */
  readonly onCleanupFailed?: (err: unknown) => void;
}

export interface FoldJob {
  /** The model (its session, or a scheduler in front of it); the loop creates and releases its own cache there. */
  readonly model: DecoderModel;
  /** The checkpoint identity's model and tokenizer fingerprints. */
  readonly fingerprints: CheckpointIdentity['fingerprints'];
  readonly tokens: Int32Array;
  readonly questions: readonly Query[];
  readonly limits: DocumentLimits;
  readonly settings: JobSettings;
  /** Where to checkpoint and resume from; absent: no checkpoints (`kvfold fold` without --checkpoint). */
  readonly checkpoint?: CheckpointSettings;
  readonly control?: JobControl;
  /** Shared by the documents folded at once in this process: their caches wait for room together (cache-admission.ts). */
  readonly admission?: CacheAdmission;
}

export interface JobProgress {
  readonly step: number;
  readonly totalSteps: number;
  /** Document tokens read so far. */
  readonly tokens: number;
  readonly totalTokens: number;
  /** This step's tokens and time. */
  readonly stepTokens: number;
  readonly stepMs: number;
  /** The rest of the fold at this step's pace. */
  readonly etaMs: number;
}

export interface Answer {
  readonly query: string;
  readonly text: string;
  readonly tokenIds: number[];
  readonly stopReason: string;
}

export interface ChunkNll {
  readonly step: number;
  readonly start: number;
  readonly end: number;
  readonly nll: number;
  readonly tokens: number;
}

export interface JobResult {
  readonly tokens: number;
  readonly chunkSize: number;
  readonly steps: number;
  /** Steps this run folded (fewer than `steps` after a resume; 0 when a kept final state answered). */
  readonly stepsRun: number;
  /** The step the fold resumed from (0: from the start). */
  readonly resumedFromStep: number;
  readonly kvLength: number;
  readonly kvBytes: number;
  readonly answers: readonly Answer[];
  /** Per chunk, when `settings.nll`. */
  readonly nll?: readonly ChunkNll[];
  readonly timings: { readonly foldMs: number; readonly generateMs: number; readonly tokensPerSecond: number };
  readonly checkpoint: CheckpointReport;
}

export type JobOutcome =
  | { readonly kind: 'completed'; readonly result: JobResult; readonly cleanupFailed: boolean }
  /** Stopped (SIGTERM) or cancelled after `step`, with a checkpoint of that step committed. */
  | { readonly kind: 'stopped' | 'cancelled'; readonly step: number; readonly checkpoint: CheckpointReport };

/** How often a fold asks whether its batch was cancelled. */
const CANCEL_POLL_MS = 1000;

export async function runJob(job: FoldJob): Promise<JobOutcome> {
  const { model, tokens, settings, control = {} } = job;
  const { chunkSize, policy } = settings;
  const totalSteps = stepCount(tokens.length, chunkSize);
  const { cache, admitted } = await createJobCache(job);
  try {
    const identity = { fingerprints: job.fingerprints, chunkSize, policy, withLogits: settings.nll };
    const checkpoints = await openCheckpoints(job.checkpoint, cache, identity, (field) => control.onStartOver?.(field));
    const from = checkpoints.start;
    const resumedFromStep = from?.step ?? 0;
    if (from) control.onResume?.({ step: from.step, tokens: cache.tokensSeen, warnings: checkpoints.warnings });
    if (resumedFromStep > totalSteps) {
      throw new RangeError(`the checkpoint is at step ${resumedFromStep} but this document has ${totalSteps} steps; is it the same document?`);
    }
    const stop = stopLatch(control);

    // Fold.
    const nll: ChunkNll[] = [];
    let stepsRun = 0;
    const foldStarted = performance.now();
    if (resumedFromStep < totalSteps && (await stop.requested())) {
      return { kind: stop.kind, step: resumedFromStep, checkpoint: checkpoints.report() };
    }
    const steps = fold(model, cache, tokens, { chunkSize, policy, ...(settings.nll ? { nll: true } : {}), ...(from ? { from } : {}) });
    for await (const s of steps) {
      stepsRun++;
      if (s.nll !== undefined) nll.push({ step: s.step, start: s.start, end: s.end, nll: s.nll, tokens: s.nllTokens ?? 0 });
      await control.onStep?.(progressOf(s, tokens.length));
      const stopping = s.step < totalSteps && (await stop.requested());
      if (s.step === totalSteps || stopping || checkpoints.due(s.step)) await checkpoints.commit(cache, s.step, s.lastLogits);
      if (stopping) {
        await checkpoints.flush();
        return { kind: stop.kind, step: s.step, checkpoint: checkpoints.report() };
      }
    }
    await checkpoints.flush();
    const foldMs = performance.now() - foldStarted;
    const foldedTokens = tokens.length - tokensAfter(resumedFromStep, tokens.length, chunkSize);

    // Answer.
    const generateStarted = performance.now();
    const answers = await answerQuestions(model, cache, job.questions, settings);
    const generateMs = performance.now() - generateStarted;

    const result: JobResult = {
      tokens: tokens.length,
      chunkSize,
      steps: totalSteps,
      stepsRun,
      resumedFromStep,
      kvLength: cache.length,
      kvBytes: cache.bytes,
      answers,
      ...(settings.nll ? { nll } : {}),
      timings: { foldMs, generateMs, tokensPerSecond: foldMs > 0 ? (foldedTokens / foldMs) * 1000 : 0 },
      checkpoint: checkpoints.report(),
    };
    await control.onCompleted?.(result);
    // The document is done once its result is stored: a checkpoint that cannot be deleted costs space, not the document.
    const cleanupFailed = await checkpoints.finalize().then(
      () => false,
      (err: unknown) => {
        control.onCleanupFailed?.(err);
        return true;
      },
    );
    return { kind: 'completed', result, cleanupFailed };
  } finally {
    await cache.release();
    admitted();
  }
}

/**
 * The document's cache, sized for its fold and the questions decoded together; one the memory
 * cannot hold is refused before anything is allocated, saying how many of its rows are the answers'.
 */
async function createJobCache(job: FoldJob): Promise<{ cache: KvCache; admitted: () => void }> {
  const { model, tokens, settings } = job;
  const together = model.packs === true ? Math.min(settings.maxBatchSize, job.questions.length) : 1;
  const answers = { questionTokens: job.questions.map((q) => q.tokens.length), maxNewTokens: settings.maxNewTokens, together };
  const rows = cacheRows(settings.policy, tokens.length, settings.chunkSize, answers);
  const admitted = job.admission ? await job.admission.admit(rows * kvRowBytes(model.layout)) : () => {};
  try {
    return { cache: await model.createCache({ capacity: rows }), admitted };
  } catch (err) {
    admitted();
    const answerRows = rows - cacheRows(settings.policy, tokens.length, settings.chunkSize, { ...answers, questionTokens: [] });
    if (!(err instanceof KvCacheError) || err.code !== KvCacheErrorCode.NoMemory || together < 2) throw err;
    throw new KvCacheError(err.code, `${err.message}; ${answerRows} of the rows are the answers of ${together} questions decoded together: lower --max-batch-size`);
  }
}

/**
 * Every question from the folded cache, up to `maxBatchSize` of them decoded together (each step
 * reads the folded cache once for all of them; their prompts are read a chunk's worth of tokens a
 * step, as the fold read the document); question i samples from seed + i, so each answer is the
 * one it would get alone.
 */
async function answerQuestions(model: DecoderModel, cache: KvCache, questions: readonly Query[], s: JobSettings): Promise<Answer[]> {
  const sampling = s.sampling;
  const generated = await generateBatch(
    model,
    cache,
    questions.map((q) => q.tokens),
    {
      maxNewTokens: s.maxNewTokens,
      maxBatch: s.maxBatchSize,
      maxStepTokens: s.chunkSize,
      stopTokens: s.stopTokens,
      decode: s.decode,
      ...(sampling ? { sampling: (i: number) => ({ ...sampling, seed: sampling.seed + i }) } : {}),
      ...(s.stopStrings?.length ? { stopStrings: s.stopStrings } : {}),
    },
  );
  return generated.map((g, i) => ({ query: (questions[i] as Query).text, text: g.text ?? s.decode(g.tokenIds), tokenIds: g.tokenIds, stopReason: g.stopReason }));
}

function progressOf(s: FoldStep, totalTokens: number): JobProgress {
  return {
    step: s.step,
    totalSteps: s.totalSteps,
    tokens: s.tokens,
    totalTokens,
    stepTokens: s.end - s.start,
    stepMs: s.stepMs,
    etaMs: Math.round(s.stepMs * (s.totalSteps - s.step)),
  };
}

/**
 * A stop request, latched: once SIGTERM or a cancel is seen, the step that saw it commits and the
 * fold ends there. The cancel flag is asked at most every CANCEL_POLL_MS (it is a store or Redis read).
 */
function stopLatch(control: JobControl): { requested(): Promise<boolean>; readonly kind: 'stopped' | 'cancelled' } {
  let kind: 'stopped' | 'cancelled' | null = null;
  let lastPoll = Number.NEGATIVE_INFINITY;
  return {
    get kind() {
      return kind ?? 'stopped';
    },
    async requested() {
      if (kind) return true;
      if (control.shouldStop?.()) kind = 'stopped';
      else if (control.isCancelled && performance.now() - lastPoll > CANCEL_POLL_MS) {
        lastPoll = performance.now();
        if (await control.isCancelled()) kind = 'cancelled';
      }
      return kind !== null;
    },
  };
}
