/**
 * A fold that checkpoints its KV accumulator to an object store every N steps and resumes from the
 * last committed checkpoint: the fold behind `kvfold fold --checkpoint`, `kvfold run` and the
 * queue worker.
 *
 * The checkpoint holds the cache's rows as the model attends to them (each commit the rows added
 * since the last one, read from the cache where the model keeps it) and, when per-chunk NLL is
 * measured, the last token's logits as an opaque extra, so NLL continues across a resume. A resume
 * loads the stored rows into the fold's cache segment by segment. Uploads overlap the fold with
 * at most one segment in flight (CheckpointWriter). A stop request (`shouldStop`) ends the fold
 * after the current step with a checkpoint committed, so a preempted worker loses nothing; a
 * crash loses at most one checkpoint interval.
 */
import { type KvCodec, openCheckpoint } from '@kvfold/checkpoint';
import type { FoldStep, KvCache, KvLayout } from '@kvfold/fold-core';
import { fullPolicy, stepCount } from '@kvfold/fold-core';
import type { ObjectStore } from '@kvfold/storage';
import { type FoldDocumentInput, type FoldDocumentResult, foldCacheRows, foldDocument } from './fold-document.ts';

export interface CheckpointSettings {
  readonly store: ObjectStore;
  /** Key prefix inside the store (default `checkpoints`). */
  readonly prefix?: string;
  /** The document's key under the prefix. */
  readonly docKey: string;
  readonly everySteps: number;
  readonly codec: KvCodec;
  /** Ignore a stored checkpoint made with other settings (or damaged beyond use) and start over. */
  readonly fresh?: boolean;
  /** This attempt's identity, for fencing (e.g. job id + attempt). */
  readonly writerId?: string;
}

export interface ResumableFoldInput extends Omit<FoldDocumentInput, 'from' | 'cache'> {
  readonly checkpoint: CheckpointSettings;
  readonly fingerprints: { readonly model: string; readonly tokenizer: string };
  /** The policy as a string for the checkpoint's fingerprints, e.g. `full` or `streaming(sink=4,window=1024)`. */
  readonly policyName: string;
  /** Told when the fold resumes from a checkpoint. */
  readonly onResume?: (info: { step: number; tokens: number; warnings: readonly string[] }) => void;
}

export interface CheckpointReport {
  readonly segments: number;
  /** Bytes this run uploaded (segments, extras, manifests). */
  readonly bytes: number;
  readonly commits: number;
  readonly warnings: readonly string[];
}

export interface ResumableFoldResult extends FoldDocumentResult {
  /** Step the fold resumed from (0: from the start). Equal to `steps` when a kept final state was reused. */
  readonly resumedFromStep: number;
  readonly checkpoint: CheckpointReport;
  /** Removes the document's checkpoints, or keeps the final state for reuse. Call once the result is stored. */
  finalize(options: { keepFinal: boolean }): Promise<void>;
}

export const DEFAULT_CHECKPOINT_PREFIX = 'checkpoints';

export async function foldResumable(input: ResumableFoldInput): Promise<ResumableFoldResult> {
  const policy = input.policy ?? fullPolicy;
  const totalSteps = stepCount(input.tokens.length, input.chunkSize);
  const cache = await input.model.createCache({ capacity: foldCacheRows(policy, input.tokens.length, input.chunkSize, input.queries, input.maxNewTokens) });
  try {
    return await foldWithCheckpoints(input, cache, totalSteps);
  } finally {
    await cache.release();
  }
}

async function foldWithCheckpoints(input: ResumableFoldInput, cache: KvCache, totalSteps: number): Promise<ResumableFoldResult> {
  const policy = input.policy ?? fullPolicy;
  const { checkpoint: ck } = input;
  const opened = await openCheckpoint(ck.store, {
    prefix: ck.prefix ?? DEFAULT_CHECKPOINT_PREFIX,
    docKey: ck.docKey,
    fingerprints: { ...input.fingerprints, chunkSize: input.chunkSize, policy: input.policyName, codec: ck.codec },
    layout: kvLayoutOf(input.model.layout),
    appendOnly: policy.appendOnly,
    everySteps: ck.everySteps,
    into: cache,
    ...(ck.fresh ? { fresh: true } : {}),
    ...(ck.writerId ? { writerId: ck.writerId } : {}),
  });
  const { writer, resume } = opened;
  if (resume && resume.step > totalSteps) {
    throw new RangeError(`checkpoint of ${ck.docKey} is at step ${resume.step} but this document has ${totalSteps} steps; is it the same document?`);
  }
  const resumedFromStep = resume?.step ?? 0;
  if (resume) input.onResume?.({ step: resume.step, tokens: resume.tokens, warnings: opened.warnings });

  let lastCommitted = resumedFromStep;
  // A stop request is latched, so the step that sees it commits and the fold then stops there.
  let stopRequested = false;
  const shouldStop = () => {
    if (!stopRequested && input.shouldStop?.()) stopRequested = true;
    return stopRequested;
  };
  const commit = async (s: FoldStep) => {
    // The last logits ride along only when per-chunk NLL is measured: nothing else needs them.
    await writer.commit(cache, s.step, input.nll ? { extra: bytesOf(s.lastLogits) } : {});
    lastCommitted = s.step;
  };
  const result = await foldDocument({
    ...input,
    policy,
    cache,
    shouldStop,
    ...(resume ? { from: { step: resume.step, ...(resume.extra ? { lastLogits: floatsOf(resume.extra) } : {}) } } : {}),
    onStep: async (s) => {
      await input.onStep?.(s);
      const stopping = s.step < totalSteps && shouldStop();
      if (s.step === totalSteps || stopping || writer.due(s.step)) await commit(s);
    },
  });
  await writer.flush();
  const stats = writer.stats;
  return {
    ...result,
    resumedFromStep,
    checkpoint: {
      segments: writer.manifest.segments.length,
      bytes: stats.segmentBytes + stats.extraBytes + stats.manifestBytes,
      commits: stats.commits,
      warnings: opened.warnings,
    },
    finalize: async ({ keepFinal }) => {
      if (lastCommitted < totalSteps) throw new RangeError('only a finished fold can be finalized');
      await writer.finalize({ keepFinal });
    },
  };
}

/** The bytes of a Float32Array (a copy, so later writes to the logits cannot change a stored blob). */
function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.slice().buffer);
}

function floatsOf(b: Uint8Array): Float32Array {
  const copy = new Uint8Array(b.length);
  copy.set(b);
  return new Float32Array(copy.buffer);
}

/** The cache's layout alone (a model's layout also carries its vocabulary size). */
function kvLayoutOf(l: KvLayout): KvLayout {
  return { layers: l.layers, kvHeads: l.kvHeads, headDim: l.headDim, dtype: l.dtype, maxPositions: l.maxPositions };
}
