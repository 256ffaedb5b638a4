/**
 * Reading a checkpoint back: the manifest (with its etag, for the next conditional write), then
 * every segment, verified (sha256 and decode) and appended to a cache one segment at a time, so
 * no second copy of the cache is ever held. A missing or damaged segment ends the load there: the
 * cache holds the longest valid prefix, reported with a warning, never an exception. Wrong
 * settings and newer formats are refused.
 */
import type { KvCache, KvLayout } from '@kvfold/fold-core';
import { describeLayout, sameGeometry } from '@kvfold/fold-core';
import { ObjectNotFoundError, type ObjectStore } from '@kvfold/storage';
import { createHash } from 'node:crypto';
import { checkpointErrors, FingerprintMismatchError, type FingerprintField } from './errors.ts';
import { type DocLocation, manifestKey, objectUri } from './keys.ts';
import { decodeSegment } from './kvf-decode.ts';
import { type Fingerprints, type Manifest, parseManifest, type SegmentEntry } from './manifest.ts';

/** A manifest as stored, with the etag to pass back as `ifMatch`. */
export interface StoredManifest {
  readonly manifest: Manifest;
  readonly etag: string;
}

/** Where a load stopped short of the manifest's end, and why. */
export interface FallBack {
  /** The step the manifest claimed. */
  readonly fromStep: number;
  /** The step the valid prefix reaches. */
  readonly toStep: number;
  /** The first segment that could not be used. */
  readonly segment: string;
  readonly reason: string;
}

export interface LoadedCheckpoint extends StoredManifest {
  /** Rows appended to the cache (the valid prefix, when `fellBackFrom` is set). */
  readonly rows: number;
  /** Fold steps completed and tokens read by what was loaded. */
  readonly step: number;
  readonly tokens: number;
  /** The segments loaded: all of the manifest's, or a prefix. */
  readonly segments: readonly SegmentEntry[];
  /** The caller's blob of `step`; null when absent, damaged, or from a later step than `step`. */
  readonly extra: Uint8Array | null;
  readonly warnings: readonly string[];
  readonly fellBackFrom: FallBack | null;
}

/** Settings the stored checkpoint must have been made with. */
export interface Expected {
  readonly fingerprints: Fingerprints;
  readonly layout?: KvLayout;
}

/** How often a manifest is re-read when it changes between its HEAD and its GET. */
const READ_ATTEMPTS = 5;

/** Reads the manifest and its etag; null when there is none. */
export async function readManifest(store: ObjectStore, loc: DocLocation): Promise<StoredManifest | null> {
  const key = manifestKey(loc);
  for (let i = 0; i < READ_ATTEMPTS; i++) {
    const before = await store.head(key);
    if (!before) return null;
    let bytes: Uint8Array;
    try {
      bytes = await store.getBytes(key);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) return null;
      throw err;
    }
    const after = await store.head(key);
    if (after?.etag === before.etag) return { manifest: parseManifest(bytes, objectUri(store, key)), etag: before.etag };
  }
  throw checkpointErrors.corrupt(objectUri(store, key), `it changed on each of ${READ_ATTEMPTS} reads (writers are racing)`);
}

/** Throws FingerprintMismatchError naming the first field that differs. */
export function assertSameSettings(where: string, m: Manifest, expected: Expected): void {
  const fields: FingerprintField[] = ['model', 'tokenizer', 'chunkSize', 'policy', 'codec'];
  for (const f of fields) {
    const stored = String(m.fingerprints[f as keyof Fingerprints]);
    const wanted = String(expected.fingerprints[f as keyof Fingerprints]);
    if (stored !== wanted) throw new FingerprintMismatchError(where, f, stored, wanted);
  }
  if (expected.layout && !sameGeometry(m.layout, expected.layout)) {
    throw new FingerprintMismatchError(where, 'layout', describeLayout(m.layout), describeLayout(expected.layout));
  }
}

/**
 * Loads a document's checkpoint into an empty cache; null when it has none. Throws
 * KVF_CKPT_VERSION for a newer manifest, KVF_CKPT_CORRUPT for an unreadable manifest,
 * FingerprintMismatchError when `expect` differs. Damaged or missing segments do not throw: see
 * `fellBackFrom` and `warnings`.
 */
export async function loadCheckpoint(store: ObjectStore, loc: DocLocation, into: KvCache, expect?: Expected): Promise<LoadedCheckpoint | null> {
  const stored = await readManifest(store, loc);
  if (!stored) return null;
  const where = objectUri(store, manifestKey(loc));
  if (expect) assertSameSettings(where, stored.manifest, expect);
  return loadSegments(store, loc, stored, into);
}

/** Appends the rows a manifest describes to an empty cache, segment by segment. */
export async function loadSegments(store: ObjectStore, loc: DocLocation, stored: StoredManifest, into: KvCache): Promise<LoadedCheckpoint> {
  const { manifest: m } = stored;
  const layout: KvLayout = { ...m.layout };
  if (into.length !== 0) throw checkpointErrors.badState(`a checkpoint loads into an empty cache; this one holds ${into.length} rows`);
  if (!sameGeometry(into.layout, layout)) {
    throw checkpointErrors.badState(`cache layout ${describeLayout(into.layout)} is not the checkpoint's ${describeLayout(layout)}`);
  }
  await into.reserve(m.segments.at(-1)?.rows[1] ?? 0);
  let rows = 0;
  let step = 0;
  let tokens = 0;
  let fellBackFrom: FallBack | null = null;
  const used: SegmentEntry[] = [];
  for (const seg of m.segments) {
    const name = objectUri(store, seg.key);
    try {
      if (seg.rows[0] !== rows) throw checkpointErrors.corrupt(where(m), `segment ${seg.key} starts at row ${seg.rows[0]}, expected ${rows}`);
      const decoded = await decodeSegment(await store.get(seg.key), name, { expectedBytes: seg.bytes });
      const h = decoded.header;
      if (decoded.sha256 !== seg.sha256) throw checkpointErrors.corrupt(name, `sha256 ${decoded.sha256} is not the recorded ${seg.sha256}`);
      if (h.rowFrom !== seg.rows[0] || h.rowTo !== seg.rows[1] || h.codec !== m.fingerprints.codec) {
        throw checkpointErrors.corrupt(name, 'its header disagrees with the manifest (rows or codec)');
      }
      if (h.layers !== layout.layers || h.kvHeads !== layout.kvHeads || h.headDim !== layout.headDim || h.dtype !== layout.dtype) {
        throw checkpointErrors.corrupt(name, 'its shape disagrees with the manifest layout');
      }
      await into.append(decoded.rows, { nextPosition: h.nextPosition, tokensSeen: h.tokensSeen });
      rows = h.rowTo;
      step = seg.steps[1];
      tokens = seg.tokens[1];
      used.push(seg);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      fellBackFrom = { fromStep: m.step, toStep: step, segment: seg.key, reason };
      break;
    }
  }
  if (!fellBackFrom) {
    step = m.step;
    tokens = m.tokens;
  }
  const warnings: string[] = [];
  if (fellBackFrom) {
    warnings.push(
      `checkpoint ${where(m)} claims step ${fellBackFrom.fromStep} but segment ${fellBackFrom.segment} is unusable ` +
        `(${fellBackFrom.reason}); resuming from step ${fellBackFrom.toStep}, the longest valid prefix`,
    );
  }
  const extra = fellBackFrom ? null : await loadExtra(store, m, warnings);
  return { ...stored, rows, step, tokens, segments: used, extra, warnings, fellBackFrom };

  function where(mf: Manifest) {
    return objectUri(store, manifestKey({ ...loc, docKey: mf.docKey }));
  }
}

async function loadExtra(store: ObjectStore, m: Manifest, warnings: string[]): Promise<Uint8Array | null> {
  if (!m.extra || m.extra.step !== m.step) return null;
  try {
    const bytes = await store.getBytes(m.extra.key);
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha === m.extra.sha256 && bytes.length === m.extra.bytes) return bytes;
    warnings.push(`extra blob ${objectUri(store, m.extra.key)} fails its sha256; it is ignored`);
  } catch (err) {
    warnings.push(`extra blob ${objectUri(store, m.extra.key)} is unreadable (${(err as Error).message}); it is ignored`);
  }
  return null;
}
