/** `models import`: Hugging Face checkpoints (safetensors) to model folders, and the checkpoint writer the tests and benchmark use. */
export { importCheckpoint } from './import-checkpoint.ts';
export type { ImportDtype, ImportOptions, ImportResult } from './import-checkpoint.ts';
export { IMPORT_DTYPES } from './import-checkpoint.ts';
export { ARCHITECTURES, SUPPORTED, readArchitecture } from './architecture.ts';
export type { Architecture, Family } from './architecture.ts';
export { openCheckpoint } from './checkpoint.ts';
export type { Checkpoint } from './checkpoint.ts';
export { ImportError } from './errors.ts';
export type { ImportErrorCode } from './errors.ts';
export { SafetensorsFile, writeSafetensors } from './safetensors.ts';
export type { TensorEntry, TensorToWrite } from './safetensors.ts';
export { specContents, writeCheckpoint } from './write-checkpoint.ts';
export type { CheckpointContents, CheckpointDtype, SourceTensor, WriteCheckpointOptions } from './write-checkpoint.ts';
