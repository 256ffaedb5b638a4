/**
 * The defaults and choices of a batch spec (and where clients find the API), as plain values: BatchSpec (batch-spec.ts) is built from
 * them, and code that must start without zod (the CLI's command tree, for `kvfold --help`) reads
 * them here (`@kvfold/contract/defaults`). This module imports nothing.
 */

/** Tokens per fold step when the spec does not say. */
export const DEFAULT_CHUNK_SIZE = 256;
/** Fold steps between checkpoints when the spec does not say. */
export const DEFAULT_CHECKPOINT_EVERY = 8;
/** Tokens generated per query when the spec does not say. */
export const DEFAULT_MAX_NEW_TOKENS = 32;
/** Questions of one document answered together, in one step each, when the spec does not say. */
export const DEFAULT_MAX_BATCH_SIZE = 8;
/** Longest document folded by default: 128K tokens, the longest context the design targets. */
export const DEFAULT_MAX_TOKENS_PER_DOCUMENT = 131_072;
/** Attention-sink tokens a streaming policy keeps by default (StreamingLLM keeps 4). */
export const DEFAULT_STREAMING_SINK = 4;

/** The width the KV cache is held at while folding (`kv`): float32, float16 or int8, in memory and in checkpoints. */
export const KV_STORAGES = ['f32', 'f16', 'int8'] as const;
export const DEFAULT_KV = 'f32';
/** How checkpoints encode the KV cache (`kvCodec`); by default the width it is held at. */
export const KV_CODECS = ['f32', 'f16', 'int8'] as const;
/** How ingested files become documents (`grouping`). */
export const GROUPINGS = ['file', 'directory', 'auto'] as const;
export const DEFAULT_GROUPING = 'file';

/** Where API clients find the REST service when they are not told (`KVFOLD_API_URL`, `--api`). */
export const DEFAULT_API_URL = 'http://127.0.0.1:8080';
