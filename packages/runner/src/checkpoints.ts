/**
 * A job's checkpoints, picked once by `openCheckpoints`: in an object store (resume from what is
 * stored, commit every N steps, fenced against stale writers), or none (`kvfold fold` without
 * `--checkpoint`). The job loop calls the same four operations either way.
 *
 * A stored checkpoint holds the cache's rows as the model attends to them (each commit the rows
 * added since the last, read from the cache where the model keeps it) and, when per-chunk NLL is
 * measured, the last token's logits as an opaque extra, so NLL continues across a resume. Uploads
 * overlap the fold with at most one segment in flight (CheckpointWriter).
 */
import { createHash } from 'node:crypto';
import { type CheckpointWriter, FingerprintMismatchError, type KvCodec, openCheckpoint } from '@kvfold/checkpoint';
import type { FoldStart, KvCache, KvLayout, KvPolicy } from '@kvfold/fold-core';
import type { ObjectStore } from '@kvfold/storage';

export const DEFAULT_CHECKPOINT_PREFIX = 'checkpoints';

export interface CheckpointSettings {
  readonly store: ObjectStore;
  /** Key prefix inside the store (default `checkpoints`). */
  readonly prefix?: string;
  /** The document's key under the prefix: `checkpointKey(docId, settings)`. */
  readonly key: string;
  readonly everySteps: number;
  readonly codec: KvCodec;
  /** This attempt's identity, for fencing (e.g. job id + attempt + worker). */
  readonly writerId?: string;
  /** Ignore whatever is stored and start over. */
  readonly fresh?: boolean;
  /**
   * A stored checkpoint made with other settings (a model rebuilt at the same path, say): start
   * over, telling `onStartOver` (a batch's document), or refuse with FingerprintMismatchError (`kvfold fold`, where `--fresh` decides).
   */
  readonly onMismatch: 'start-over' | 'refuse';
  /** Keep the final state once the result is stored (fold once, ask many) instead of deleting the checkpoint. */
  readonly keepFinal: boolean;
}

/** What a job's checkpoints must match to be resumed. */
export interface CheckpointIdentity {
  readonly fingerprints: { readonly model: string; readonly tokenizer: string };
  readonly chunkSize: number;
  readonly policy: KvPolicy;
  /** Each commit carries the last logits (per-chunk NLL continues across a resume). */
  readonly withLogits: boolean;
}

export interface CheckpointReport {
  readonly segments: number;
  /** Bytes this run uploaded (segments, extras, manifests). */
  readonly bytes: number;
  readonly commits: number;
}

export interface Checkpoints {
  /** Where the fold starts: the step the cache now holds (and its last logits), or undefined for step 0. */
  readonly start: FoldStart | undefined;
  /** Said when the stored checkpoint could only partly be used (a damaged segment), or was made with other settings. */
  readonly warnings: readonly string[];
  /** Whether fold step `step` is a checkpoint step. */
  due(step: number): boolean;
  /** Commits the cache as of `step` (returns once the previous commit is done; at most one is in flight). */
  commit(cache: KvCache, step: number, lastLogits: Float32Array | undefined): Promise<void>;
  /** Waits for the commit in flight. */
  flush(): Promise<void>;
  report(): CheckpointReport;
  /** Deletes the checkpoint, or keeps it final (`keepFinal`); only after the result is stored. */
  finalize(): Promise<void>;
}

/**
 * The settings that change the folded state, hashed into the checkpoint's key: checkpoints of other
 * settings never collide, and one of the same settings is found again whoever folds the document.
 */
export function checkpointKey(docId: string, settings: { model: string | { uri: string; fingerprint?: string | undefined }; chunkSize: number; policy: unknown; kv: string; kvCodec: string }): string {
  const model = typeof settings.model === 'string' ? settings.model : `${settings.model.uri}#${settings.model.fingerprint ?? ''}`;
  const hash = createHash('sha256').update(JSON.stringify([model, settings.chunkSize, settings.policy, settings.kv, settings.kvCodec])).digest('hex');
  return `${docId}-${hash.slice(0, 16)}`;
}

/** Opens a job's checkpoints into its (empty) cache: resumes from a stored one where there is one. */
export async function openCheckpoints(
  settings: CheckpointSettings | undefined,
  cache: KvCache,
  identity: CheckpointIdentity,
  onStartOver: (field: string) => void,
): Promise<Checkpoints> {
  if (!settings) return NO_CHECKPOINTS;
  const open = (fresh: boolean) =>
    openCheckpoint(settings.store, {
      prefix: settings.prefix ?? DEFAULT_CHECKPOINT_PREFIX,
      docKey: settings.key,
      fingerprints: { ...identity.fingerprints, chunkSize: identity.chunkSize, policy: identity.policy.name, codec: settings.codec },
      layout: kvLayoutOf(cache.layout),
      appendOnly: identity.policy.appendOnly,
      everySteps: settings.everySteps,
      into: cache,
      ...(fresh ? { fresh: true } : {}),
      ...(settings.writerId ? { writerId: settings.writerId } : {}),
    });
  const opened = await open(settings.fresh === true).catch((err: unknown) => {
    if (!(err instanceof FingerprintMismatchError) || settings.onMismatch === 'refuse') throw err;
    onStartOver(err.field);
    return open(true);
  });
  return new StoredCheckpoints(opened.writer, settings.keepFinal, identity.withLogits, opened.resume, opened.warnings);
}

class StoredCheckpoints implements Checkpoints {
  readonly start: FoldStart | undefined;

  constructor(
    private readonly writer: CheckpointWriter,
    private readonly keepFinal: boolean,
    private readonly withLogits: boolean,
    resume: { step: number; extra: Uint8Array | null } | null,
    readonly warnings: readonly string[],
  ) {
    this.start = resume ? { step: resume.step, ...(resume.extra ? { lastLogits: floatsOf(resume.extra) } : {}) } : undefined;
  }

  due(step: number): boolean {
    return this.writer.due(step);
  }

  async commit(cache: KvCache, step: number, lastLogits: Float32Array | undefined): Promise<void> {
    // The last logits ride along only when per-chunk NLL is measured: nothing else needs them.
    await this.writer.commit(cache, step, this.withLogits && lastLogits ? { extra: bytesOf(lastLogits) } : {});
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }

  report(): CheckpointReport {
    const s = this.writer.stats;
    return { segments: this.writer.manifest.segments.length, bytes: s.segmentBytes + s.extraBytes + s.manifestBytes, commits: s.commits };
  }

  finalize(): Promise<void> {
    return this.writer.finalize({ keepFinal: this.keepFinal });
  }
}

const NO_CHECKPOINTS: Checkpoints = {
  start: undefined,
  warnings: [],
  due: () => false,
  commit: async () => {},
  flush: async () => {},
  report: () => ({ segments: 0, bytes: 0, commits: 0 }),
  finalize: async () => {},
};

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
