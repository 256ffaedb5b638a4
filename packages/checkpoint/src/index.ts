/**
 * @kvfold/checkpoint: the KVF segment codec, and fenced, append-only checkpoints of a fold's KV
 * state in an ObjectStore.
 */
export {
  CheckpointError,
  CheckpointErrorCode,
  CheckpointFencedError,
  checkpointErrors,
  type FingerprintField,
  FingerprintMismatchError,
} from './errors.ts';
export {
  KV_CODECS,
  KVF_FORMAT_VERSION,
  KVF_HEADER_BYTES,
  KVF_TRAILER_BYTES,
  type KvCodec,
  type SegmentHeader,
} from './kvf-format.ts';
export { type EncodeOptions, encodeSegment, type KvSegment, segmentBytes } from './kvf-encode.ts';
export { type DecodedSegment, decodeSegment } from './kvf-decode.ts';
export {
  type Fingerprints,
  type Manifest,
  MANIFEST_FORMAT_VERSION,
  manifestSchema,
  parseManifest,
  type SegmentEntry,
} from './manifest.ts';
export { type DocLocation, docFolder, manifestKey } from './keys.ts';
export {
  type Expected,
  type FallBack,
  type LoadedCheckpoint,
  loadCheckpoint,
  readManifest,
  type StoredManifest,
} from './load-checkpoint.ts';
export {
  CheckpointWriter,
  deleteCheckpoint,
  type OpenCheckpointOptions,
  type OpenedCheckpoint,
  type KvSource,
  openCheckpoint,
  OUTAGE_RETRY_DELAYS_MS,
  type WriterStats,
} from './checkpoint-writer.ts';
export { loadFinalState } from './final-state.ts';
export { type SweepOptions, type SweepReport, sweepCheckpoints } from './sweep.ts';
