/**
 * CheckpointWriter: commits a document's state every few steps as immutable segments plus a
 * manifest written last, fenced so that a superseded attempt can never overwrite a newer one.
 *
 * Fencing has two layers. Every manifest carries `generation` and `writerId`; `openCheckpoint`
 * claims the document by writing generation + 1 with its own id, and every later commit first
 * re-reads the stored manifest and refuses (CheckpointFencedError) unless both are still its own.
 * Then the manifest is replaced with `ifMatch` = the etag this writer last wrote (`ifNoneMatch`
 * for a new document), which closes the window between that re-read and the write on stores that
 * enforce conditional writes. On stores that do not (`conditionalWrites: false`), only the
 * re-read guards, so two attempts committing within the same instant could still race.
 *
 * Overlap is bounded: `commit` starts the upload in the background and returns; a second commit
 * waits for the first. Errors surface on the next `commit`, `flush` or `finalize`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { KvCache, KvLayout, KvPositions, KvRows } from '@kvfold/fold-core';
import { sameGeometry } from '@kvfold/fold-core';
import { PreconditionFailedError, type ObjectStore } from '@kvfold/storage';
import { CheckpointFencedError, checkpointErrors } from './errors.ts';
import { type DocLocation, docFolder, extraKey, manifestKey, segmentKey, objectUri } from './keys.ts';
import { encodeSegment, type KvSegment } from './kvf-encode.ts';
import type { KvCodec } from './kvf-format.ts';
import { type Expected, type LoadedCheckpoint, loadSegments, readManifest, assertSameSettings } from './load-checkpoint.ts';
import { type Fingerprints, type Manifest, MANIFEST_FORMAT_VERSION, type SegmentEntry, serializeManifest } from './manifest.ts';

/** What a commit reads its rows from: a fold's cache. */
export interface KvSource extends KvPositions {
  readonly layout: KvLayout;
  readonly length: number;
  read(from: number, to: number): Promise<KvRows>;
}

export interface OpenCheckpointOptions extends DocLocation {
  readonly fingerprints: Fingerprints;
  readonly layout: KvLayout;
  /** The (empty) cache a stored checkpoint is loaded into, to resume from; left empty when there is none. */
  readonly into: KvCache;
  /** true: each commit stores the rows added since the last one; false: a full snapshot. */
  readonly appendOnly: boolean;
  /** Ignore any stored checkpoint (other settings, damaged, newer format) and start over. */
  readonly fresh?: boolean;
  /** This attempt's identity, e.g. a job id and attempt number. Default: a random UUID. */
  readonly writerId?: string;
  /** `due(step)` is true every this many steps. Default 8. */
  readonly everySteps?: number;
  /**
   * Waits between tries of a write the store failed for a reason that may pass (no answer, a 5xx):
   * default OUTAGE_RETRY_DELAYS_MS, about a minute in all. A commit waits out an outage that short;
   * the fold waits for it at its next commit, and goes on.
   */
  readonly retryDelaysMs?: readonly number[];
}

/** Waits between tries of a checkpoint write during a store outage: 1, 2, 4, 8, 15 and 30 s (60 s in all). */
export const OUTAGE_RETRY_DELAYS_MS: readonly number[] = [1000, 2000, 4000, 8000, 15_000, 30_000];

/** Store failures that may pass: the backend did not answer, or answered 5xx. */
const PASSING_CODES = new Set(['KVF_STORE_UNREACHABLE', 'KVF_STORE_IO']);

export interface OpenedCheckpoint {
  readonly writer: CheckpointWriter;
  /** What was loaded into the cache to continue from; null to start from the beginning. */
  readonly resume: LoadedCheckpoint | null;
  readonly warnings: readonly string[];
}

/** Bytes a writer has sent to the store. */
export interface WriterStats {
  commits: number;
  /** Writes tried again after the store failed them for a reason that may pass. */
  retries: number;
  segmentBytes: number;
  extraBytes: number;
  manifestBytes: number;
}

/**
 * How many times `openCheckpoint` re-reads and retries when the manifest changes under it — another
 * attempt claiming, or a stale writer still committing every few steps. Retries back off with
 * jitter (CLAIM_BACKOFF_MS doubling to CLAIM_BACKOFF_MAX_MS), so a newcomer lands its claim between
 * a busy writer's commits and that writer is fenced at its next one.
 */
const CLAIM_ATTEMPTS = 40;
const CLAIM_BACKOFF_MS = 5;
const CLAIM_BACKOFF_MAX_MS = 200;
/** Checkpoint cadence when none is given: DESIGN.md's "every N steps" with N = 8. */
const DEFAULT_EVERY_STEPS = 8;

/**
 * Opens a document for checkpointing: loads what is stored (unless `fresh`), claims the next
 * generation, and returns the writer and the state to resume from. Any earlier writer of the
 * document is fenced from then on.
 */
export async function openCheckpoint(store: ObjectStore, options: OpenCheckpointOptions): Promise<OpenedCheckpoint> {
  const writerId = options.writerId ?? randomUUID();
  const expected: Expected = { fingerprints: options.fingerprints, layout: options.layout };
  const start = options.into.mark();
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    await options.into.rewind(start); // a retry reloads what is stored now
    let stored: Awaited<ReturnType<typeof readManifest>> = null;
    let storedEtag: string | null = null;
    let oldGeneration = 0;
    try {
      stored = await readManifest(store, options);
    } catch (err) {
      if (!options.fresh) throw err;
      storedEtag = (await store.head(manifestKey(options)))?.etag ?? null; // unreadable, replaced below
    }
    let resume: LoadedCheckpoint | null = null;
    if (stored) {
      storedEtag = stored.etag;
      oldGeneration = stored.manifest.generation;
      if (!options.fresh) {
        assertSameSettings(objectUri(store, manifestKey(options)), stored.manifest, expected);
        resume = await loadSegments(store, options, stored, options.into);
      }
    }
    const claim: Manifest = {
      formatVersion: MANIFEST_FORMAT_VERSION,
      docKey: options.docKey,
      generation: oldGeneration + 1,
      writerId,
      fingerprints: options.fingerprints,
      layout: { ...options.layout },
      appendOnly: options.appendOnly,
      step: resume?.step ?? 0,
      tokens: resume?.tokens ?? 0,
      segments: [...(resume?.segments ?? [])],
      extra: resume?.extra ? (stored?.manifest.extra ?? null) : null,
      final: resume ? resume.manifest.final && !resume.fellBackFrom : false,
      updatedAt: new Date().toISOString(),
    };
    try {
      const bytes = serializeManifest(claim);
      const { etag } = await store.put(
        manifestKey(options),
        bytes,
        storedEtag === null ? { ifNoneMatch: '*', contentType: 'application/json' } : { ifMatch: storedEtag, contentType: 'application/json' },
      );
      const writer = new CheckpointWriter(store, options, claim, etag, resume?.rows ?? 0, options.everySteps ?? DEFAULT_EVERY_STEPS, options.retryDelaysMs ?? OUTAGE_RETRY_DELAYS_MS);
      writer.stats.manifestBytes += bytes.length;
      return { writer, resume, warnings: resume?.warnings ?? [] };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // Another attempt claimed or committed between our read and our write: read again.
      const ceiling = Math.min(CLAIM_BACKOFF_MAX_MS, CLAIM_BACKOFF_MS * 2 ** attempt);
      await new Promise((r) => setTimeout(r, Math.random() * ceiling));
    }
  }
  const now = await readManifest(store, options).catch(() => null);
  throw new CheckpointFencedError(objectUri(store, manifestKey(options)), 0, now?.manifest.generation ?? null);
}

/** Commits one document's checkpoints. Obtain one from `openCheckpoint`. */
export class CheckpointWriter {
  readonly stats: WriterStats = { commits: 0, retries: 0, segmentBytes: 0, extraBytes: 0, manifestBytes: 0 };
  readonly #store: ObjectStore;
  readonly #loc: DocLocation;
  readonly #codec: KvCodec;
  readonly #appendOnly: boolean;
  readonly #every: number;
  #manifest: Manifest;
  #etag: string;
  #rows: number;
  /** Step of the last commit started (committed or still in flight). */
  #startedStep: number;
  #inflight: Promise<void> | null = null;
  #error: unknown = null;
  #fenced: CheckpointFencedError | null = null;
  #closed = false;

  readonly #retryDelays: readonly number[];

  /** @internal Use `openCheckpoint`. */
  constructor(store: ObjectStore, loc: DocLocation, claimed: Manifest, etag: string, rows: number, everySteps: number, retryDelays: readonly number[] = OUTAGE_RETRY_DELAYS_MS) {
    this.#store = store;
    this.#retryDelays = retryDelays;
    this.#loc = { docKey: loc.docKey, ...(loc.prefix !== undefined ? { prefix: loc.prefix } : {}) };
    this.#codec = claimed.fingerprints.codec as KvCodec;
    this.#appendOnly = claimed.appendOnly;
    this.#every = everySteps;
    this.#manifest = claimed;
    this.#etag = etag;
    this.#rows = rows;
    this.#startedStep = claimed.step;
  }

  /** The generation this writer holds. */
  get generation(): number {
    return this.#manifest.generation;
  }

  /** The last committed manifest (after `flush`, the newest). */
  get manifest(): Manifest {
    return this.#manifest;
  }

  /** Whether `step` is a checkpoint step under this writer's cadence. */
  due(step: number): boolean {
    return step - this.#startedStep >= this.#every;
  }

  /**
   * Starts committing the cache as of fold step `step` and returns once the previous commit has
   * finished (at most one is in flight). The rows the segment needs — those added since the last
   * commit, or all of them for a snapshot — are read before it returns, so the fold may go on
   * changing the cache. `extra` is an opaque blob stored beside it (e.g. the last logits). Throws
   * the previous commit's error, if it failed.
   */
  async commit(source: KvSource, step: number, options: { extra?: Uint8Array } = {}): Promise<void> {
    await this.#settle();
    this.#checkSource(source, step);
    this.#startedStep = step;
    const from = this.#appendOnly ? this.#rows : 0;
    const to = source.length;
    const segment: KvSegment | null =
      !this.#appendOnly || to > from
        ? { layout: source.layout, rowFrom: from, rows: await source.read(from, to), nextPosition: source.nextPosition, tokensSeen: source.tokensSeen }
        : null;
    const running = this.#write(segment, to, source.tokensSeen, step, options.extra);
    this.#inflight = running.then(
      () => {},
      (err: unknown) => {
        this.#error = err;
        if (err instanceof CheckpointFencedError) this.#fenced = err;
      },
    );
  }

  /** Waits for the commit in flight; throws its error if it failed. */
  async flush(): Promise<void> {
    await this.#settle();
  }

  /**
   * Ends the document's checkpointing once its result is stored. Without `keepFinal`, removes
   * every checkpoint object of the document (manifest first). With it, marks the manifest final
   * (loadable by `loadFinalState`) and removes only objects the manifest does not reference.
   */
  async finalize(options: { keepFinal?: boolean } = {}): Promise<void> {
    await this.#settle();
    if (options.keepFinal) {
      await this.#commitManifest({ ...this.#manifest, final: true, updatedAt: new Date().toISOString() });
      await removeUnreferenced(this.#store, this.#loc, this.#manifest);
    } else {
      await this.#assertOwner();
      await deleteCheckpoint(this.#store, this.#loc);
    }
    this.#closed = true;
  }

  async #settle(): Promise<void> {
    if (this.#closed) throw checkpointErrors.closed(objectUri(this.#store, docFolder(this.#loc)));
    if (this.#inflight) await this.#inflight;
    this.#inflight = null;
    const err = this.#fenced ?? this.#error;
    this.#error = null;
    if (err) {
      this.#startedStep = this.#manifest.step; // the failed commit did not count
      throw err;
    }
  }

  #checkSource(source: KvSource, step: number): void {
    const a = source.layout;
    const b = this.#manifest.layout;
    if (!sameGeometry(a, b)) {
      throw checkpointErrors.badState(`cache layout ${a.layers}x${a.kvHeads}x${a.headDim} ${a.dtype} is not the checkpoint's`);
    }
    if (!Number.isInteger(step) || step <= this.#manifest.step) {
      throw checkpointErrors.badState(`step ${step} is not after the last committed step ${this.#manifest.step}`);
    }
    if (this.#appendOnly && source.length < this.#rows) {
      throw checkpointErrors.badState(
        `the cache has ${source.length} rows, fewer than the ${this.#rows} already checkpointed; an append-only writer needs a growing cache (open with appendOnly false)`,
      );
    }
  }

  async #write(segment: KvSegment | null, rows: number, tokens: number, step: number, extra: Uint8Array | undefined): Promise<void> {
    const m = this.#manifest;
    let segments: SegmentEntry[] = [...m.segments];
    if (segment) {
      const entry = await this.#putSegment(segment, this.#appendOnly ? m.step : 0, step, this.#appendOnly ? m.tokens : 0);
      segments = this.#appendOnly ? [...segments, entry] : [entry];
    }
    let extraEntry: Manifest['extra'] = null;
    if (extra) {
      const sha = createHash('sha256').update(extra).digest('hex');
      const key = extraKey(this.#loc, step, sha);
      await this.#outlasting(() => this.#store.put(key, extra));
      this.stats.extraBytes += extra.length;
      extraEntry = { key, sha256: sha, bytes: extra.length, step };
    }
    const next: Manifest = {
      ...m,
      step,
      tokens,
      segments,
      extra: extraEntry,
      final: false,
      updatedAt: new Date().toISOString(),
    };
    await this.#commitManifest(next);
    this.#rows = rows;
    this.stats.commits++;
    // Objects only the replaced manifest referenced (an old snapshot, an old extra blob).
    const keep = new Set([...next.segments.map((s) => s.key), ...(next.extra ? [next.extra.key] : [])]);
    const dropped = [...m.segments.map((s) => s.key), ...(m.extra ? [m.extra.key] : [])].filter((k) => !keep.has(k));
    await Promise.all(dropped.map((k) => this.#store.delete(k).catch(() => {})));
  }

  async #putSegment(segment: KvSegment, stepFrom: number, stepTo: number, tokensFrom: number): Promise<SegmentEntry> {
    // One encoding pass: the segment (the rows since the last checkpoint, not the whole cache) is
    // held while its trailer — the sha256 that names it — is learned, then uploaded from memory.
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    const from = segment.rowFrom;
    const to = from + segment.rows.rows;
    for await (const chunk of encodeSegment(segment, { codec: this.#codec })) {
      chunks.push(chunk);
      bytes += chunk.length;
    }
    const sha = Buffer.from(chunks.at(-1) as Uint8Array).toString('hex');
    const key = segmentKey(this.#loc, stepFrom, stepTo, sha);
    await this.#outlasting(() => this.#store.put(key, Readable.from(chunks, { objectMode: false })));
    this.stats.segmentBytes += bytes;
    return { key, sha256: sha, bytes, rows: [from, to], steps: [stepFrom, stepTo], tokens: [tokensFrom, segment.tokensSeen] };
  }

  /**
   * Runs a store write, trying it again after each of the retry delays while it fails for a reason
   * that may pass (an outage), so a short one costs a pause, not the attempt. A write whose answer
   * was lost is written again: segments are named by their content, and a manifest that landed is
   * recognised as this writer's own by #commitManifest.
   */
  async #outlasting<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const delay = this.#retryDelays[attempt];
        if (delay === undefined || typeof code !== 'string' || !PASSING_CODES.has(code)) throw err;
        this.stats.retries++;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Fails with CheckpointFencedError unless the stored manifest is still this writer's. */
  async #assertOwner(): Promise<void> {
    const stored = await readManifest(this.#store, this.#loc).catch(() => null);
    const mine = stored?.manifest.generation === this.generation && stored.manifest.writerId === this.#manifest.writerId;
    if (!mine) {
      throw new CheckpointFencedError(objectUri(this.#store, manifestKey(this.#loc)), this.generation, stored?.manifest.generation ?? null);
    }
  }

  async #commitManifest(next: Manifest): Promise<void> {
    await this.#assertOwner();
    const bytes = serializeManifest(next);
    try {
      const { etag } = await this.#outlasting(() => this.#store.put(manifestKey(this.#loc), bytes, { ifMatch: this.#etag, contentType: 'application/json' }));
      this.#etag = etag;
      this.#manifest = next;
      this.stats.manifestBytes += bytes.length;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      const now = await readManifest(this.#store, this.#loc).catch(() => null);
      // The write may have landed and only its response been lost: the client's retry of it then
      // meets its own write's etag. The stored manifest, byte for byte this one, is this writer's.
      if (now && Buffer.from(serializeManifest(now.manifest)).equals(Buffer.from(bytes))) {
        this.#etag = now.etag;
        this.#manifest = next;
        this.stats.manifestBytes += bytes.length;
        return;
      }
      throw new CheckpointFencedError(objectUri(this.#store, manifestKey(this.#loc)), this.generation, now?.manifest.generation ?? null, {
        cause: err,
      });
    }
  }
}

/** Removes every checkpoint object of a document: the manifest first, so none points at a gap. */
export async function deleteCheckpoint(store: ObjectStore, loc: DocLocation): Promise<void> {
  await store.delete(manifestKey(loc));
  const keys: string[] = [];
  for await (const o of store.list(docFolder(loc))) keys.push(o.key);
  await Promise.all(keys.map((k) => store.delete(k)));
}

/** Removes objects under the document's folder that `m` does not reference. */
async function removeUnreferenced(store: ObjectStore, loc: DocLocation, m: Manifest): Promise<void> {
  const keep = new Set([manifestKey(loc), ...m.segments.map((s) => s.key), ...(m.extra ? [m.extra.key] : [])]);
  const drop: string[] = [];
  for await (const o of store.list(docFolder(loc))) if (!keep.has(o.key)) drop.push(o.key);
  await Promise.all(drop.map((k) => store.delete(k)));
}
