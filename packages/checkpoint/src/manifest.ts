/**
 * The checkpoint manifest: a small JSON document, replaced atomically after its segments are
 * stored, that says which segments make up a document's state and with which settings they were
 * made. Parsed strictly by one zod schema; a newer `formatVersion` is refused before parsing.
 */
import * as z from 'zod';
import { checkpointErrors } from './errors.ts';
import { KV_CODECS } from './kvf-format.ts';

/** The manifest format this build writes and reads. */
export const MANIFEST_FORMAT_VERSION = 1;

const count = z.number().int().nonnegative();
const range = z.tuple([count, count]);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** What must match before a stored state may be resumed. */
export const fingerprintsSchema = z.strictObject({
  /** Identity of the model weights and graph (e.g. a hash of the model files). */
  model: z.string().min(1),
  /** Identity of the tokenizer (e.g. a hash of tokenizer.json). */
  tokenizer: z.string().min(1),
  /** Tokens per fold step. */
  chunkSize: z.number().int().positive(),
  /** KV policy spec, serialised (e.g. `full`). */
  policy: z.string().min(1),
  codec: z.enum(KV_CODECS as [string, ...string[]]),
});
export type Fingerprints = z.infer<typeof fingerprintsSchema>;

export const segmentEntrySchema = z.strictObject({
  key: z.string().min(1),
  sha256,
  bytes: count,
  /** State rows [from, to) this segment holds. */
  rows: range,
  /** Fold steps [from, to) whose rows it holds. */
  steps: range,
  /** Tokens read [from, to) while those steps ran. */
  tokens: range,
});
export type SegmentEntry = z.infer<typeof segmentEntrySchema>;

export const manifestSchema = z.strictObject({
  formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
  docKey: z.string().min(1),
  /** Raised by every writer that takes the document over; a commit needs the stored one to be its own. */
  generation: z.number().int().positive(),
  /** The attempt that holds this generation. */
  writerId: z.string().min(1),
  fingerprints: fingerprintsSchema,
  layout: z.strictObject({
    layers: z.number().int().positive(),
    kvHeads: z.number().int().positive(),
    headDim: z.number().int().positive(),
    dtype: z.enum(['float32', 'float16', 'int8']),
    maxPositions: z.number().int().positive(),
  }),
  /** true: segments are consecutive deltas; false: one full snapshot. */
  appendOnly: z.boolean(),
  /** Fold steps completed, and tokens read, at the last commit. */
  step: count,
  tokens: count,
  segments: z.array(segmentEntrySchema),
  /** Caller's opaque blob for this step (e.g. last logits), stored as its own object. */
  extra: z.strictObject({ key: z.string().min(1), sha256, bytes: count, step: count }).nullable(),
  /** Set once the fold completed and the state was kept for reuse. */
  final: z.boolean(),
  updatedAt: z.string(),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** Parses manifest bytes; throws KVF_CKPT_VERSION (newer) or KVF_CKPT_CORRUPT (anything else). */
export function parseManifest(bytes: Uint8Array, name: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw checkpointErrors.corrupt(name, 'not valid JSON', err);
  }
  const version = (json as { formatVersion?: unknown } | null)?.formatVersion;
  if (typeof version === 'number' && version > MANIFEST_FORMAT_VERSION) {
    throw checkpointErrors.newerVersion(name, version, MANIFEST_FORMAT_VERSION);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    throw checkpointErrors.corrupt(name, `does not match the manifest schema: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Manifest bytes as stored. */
export function serializeManifest(m: Manifest): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(m, null, 1)}\n`);
}
