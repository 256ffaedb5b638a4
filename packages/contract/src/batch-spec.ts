/**
 * BatchSpec: what a user asks of a batch (which corpora, which model, how to fold, what to ask).
 * Parsed strictly: an unknown key is an error naming the key, defaults are set here once.
 */
import { z } from 'zod';
import {
  DEFAULT_CHECKPOINT_EVERY,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_GROUPING,
  DEFAULT_KV,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_NEW_TOKENS,
  DEFAULT_MAX_TOKENS_PER_DOCUMENT,
  DEFAULT_STREAMING_SINK,
  GROUPINGS,
  KV_CODECS,
  KV_STORAGES,
} from './batch-defaults.ts';
import { NonEmpty, intAtLeast } from './fields.ts';

export {
  DEFAULT_CHECKPOINT_EVERY,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_MAX_BATCH_SIZE,
  DEFAULT_MAX_NEW_TOKENS,
  DEFAULT_MAX_TOKENS_PER_DOCUMENT,
  DEFAULT_STREAMING_SINK,
} from './batch-defaults.ts';

/** Which model folds the documents: a URI or local folder, plus the fingerprint it must have. */
export const ModelRef = z.union([
  NonEmpty.transform((uri) => ({ uri })),
  z.strictObject({
    /** `file://`, `s3://` URI or a local folder in the HF/optimum ONNX layout. */
    uri: NonEmpty,
    /** Expected model fingerprint; the worker refuses a model that does not match. */
    fingerprint: NonEmpty.optional(),
  }),
]);
export type ModelRef = z.output<typeof ModelRef>;

/** KV retention policy: keep everything, or StreamingLLM-style sink + sliding window. */
export const FoldPolicy = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('full') }),
    z.strictObject({
      kind: z.literal('streaming'),
      /** Leading tokens always kept (attention sinks). */
      sink: intAtLeast(0).default(DEFAULT_STREAMING_SINK),
      /** Most recent tokens kept after the sink. */
      window: intAtLeast(1),
    }),
  ],
  { error: "must be {kind:'full'} or {kind:'streaming', sink, window}" },
);
export type FoldPolicy = z.output<typeof FoldPolicy>;

/** How the KV cache is encoded in checkpoints. */
export const KvCodec = z.enum(KV_CODECS, { error: `must be one of ${KV_CODECS.map((c) => `'${c}'`).join(', ')}` });
export type KvCodec = z.output<typeof KvCodec>;

/**
 * The width the KV cache is held at while folding, in the session's memory and in checkpoints:
 * f32, f16 (half of it), or int8 (a byte a value and a float32 scale per head row, a little over a quarter).
 */
export const KvStorage = z.enum(KV_STORAGES, { error: `must be one of ${KV_STORAGES.map((c) => `'${c}'`).join(', ')}` });
export type KvStorage = z.output<typeof KvStorage>;

/** Sampled answers (Hugging Face's generate: temperature, then top-k, then top-p); absent: greedy. */
export const Sampling = z.strictObject({
  /** > 0. */
  temperature: z.number({ error: 'must be a number > 0' }).gt(0, { error: 'must be a number > 0' }),
  /** Keep the k most likely tokens (0: all). */
  topK: intAtLeast(0).optional(),
  /** Keep the smallest set of tokens whose probability reaches p, in (0, 1]. */
  topP: z.number({ error: 'must be a number in (0, 1]' }).gt(0, { error: 'must be a number in (0, 1]' }).max(1, { error: 'must be a number in (0, 1]' }).optional(),
  /** Seed of query 1 (query i uses seed + i - 1): one seed gives one set of answers. */
  seed: z.int({ error: 'must be an integer' }).default(0),
});
export type Sampling = z.output<typeof Sampling>;

/** How ingested files become documents. */
export const Grouping = z.enum(GROUPINGS, { error: `must be one of ${GROUPINGS.map((c) => `'${c}'`).join(', ')}` });
export type Grouping = z.output<typeof Grouping>;

/** The part of a batch spec a worker needs to fold one document. */
export const FoldSettings = z.strictObject({
  model: ModelRef,
  chunkSize: intAtLeast(1).default(DEFAULT_CHUNK_SIZE),
  checkpointEvery: intAtLeast(1).default(DEFAULT_CHECKPOINT_EVERY),
  policy: FoldPolicy.default({ kind: 'full' }),
  kv: KvStorage.default(DEFAULT_KV),
  /** Absent: checkpoints store the cache at the width it is held (`checkpointCodecOf`). */
  kvCodec: KvCodec.optional(),
  queries: z.array(NonEmpty, { error: 'must be an array of strings' }).default([]),
  /** Tokens generated per answer; 0 folds and asks nothing of the model (e.g. with keepFinalState). */
  maxNewTokens: intAtLeast(0).default(DEFAULT_MAX_NEW_TOKENS),
  /**
   * Sequences in one model step at most: the questions of a document are decoded together, each
   * step reading the folded cache once for all of them; 1 answers one question at a time. A
   * worker's KVFOLD_MAX_BATCH_SIZE caps it.
   */
  maxBatchSize: intAtLeast(1).default(DEFAULT_MAX_BATCH_SIZE),
  sampling: Sampling.optional(),
  /** An answer ends before the first of these texts (the model's EOS tokens always end it). */
  stop: z.array(NonEmpty, { error: 'must be an array of strings' }).default([]),
  /** Documents with more tokens fail with a clear error instead of folding for hours. */
  maxTokensPerDocument: intAtLeast(1).default(DEFAULT_MAX_TOKENS_PER_DOCUMENT),
  /** Wrap each query in the model's chat template (instruct models). */
  chatTemplate: z.boolean({ error: 'must be true or false' }).default(false),
  /** Store the final KV state so later batches can ask new questions without refolding. */
  keepFinalState: z.boolean({ error: 'must be true or false' }).default(false),
}).superRefine((f, ctx) => {
  if (f.kv === 'int8' && f.kvCodec !== undefined && f.kvCodec !== 'int8') {
    ctx.addIssue({ code: 'custom', path: ['kvCodec'], message: "must be 'int8' (or absent) with kv 'int8': an int8 cache is checkpointed as it is held, losslessly" });
  }
});
export type FoldSettings = z.output<typeof FoldSettings>;

/** How a batch's checkpoints encode its cache: `kvCodec` when the spec says, else the width `kv` holds it at. */
export function checkpointCodecOf(fold: { readonly kv: KvStorage; readonly kvCodec?: KvCodec | undefined }): KvCodec {
  return fold.kvCodec ?? fold.kv;
}
/** Fold settings as written by a user, defaults optional. */
export type FoldSettingsInput = z.input<typeof FoldSettings>;

/** A batch's settings: how to fold, and how files become documents (everything but the corpora). */
export const BatchSettings = FoldSettings.extend({
  grouping: Grouping.default(DEFAULT_GROUPING),
});

/** A batch: corpora to fold and how. */
export const BatchSpec = BatchSettings.extend({
  /** Store URIs or keys of uploaded corpus indexes (`corpora/<id>/index.json`). */
  corpus: z.array(NonEmpty, { error: 'must be an array of corpus refs' }).min(1, { error: 'must list at least one corpus' }),
});
/** A parsed batch spec, defaults filled in. */
export type BatchSpec = z.output<typeof BatchSpec>;
/** A batch spec as written by a user, defaults optional. */
export type BatchSpecInput = z.input<typeof BatchSpec>;

/** Picks the fold settings out of a parsed batch spec (what each document job carries). */
export function foldSettingsOf(spec: BatchSpec): FoldSettings {
  const { corpus: _corpus, grouping: _grouping, ...fold } = spec;
  return fold;
}
