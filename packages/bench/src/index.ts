/**
 * @kvfold/bench: measurements of the fold: the engine against a plain onnxruntime-node loop and
 * ONNX Runtime's MatMul, fold throughput, needle-in-a-haystack grids and per-step drift. Nothing
 * here is on a worker's import path.
 */
export { DEFAULT_CASES, checkBars, runEngineBench } from './engine/engine-bench.ts';
export type { Bar, BenchCase, BenchModel, CaseResult, EngineBenchOptions, EngineBenchReport } from './engine/engine-bench.ts';
export { benchIds, measureEngine } from './engine/measure-engine.ts';
export type { Engine, EngineMeasurement, EngineRunOptions } from './engine/measure-engine.ts';
// The MatMul ceiling and the plain loop load onnxruntime-node; measureEngine imports them when it runs them.
export type { MatMulCeiling } from './engine/matmul-ceiling.ts';
export { foldFlops, layerParams, lmHeadParams, shapeOf, stepWorkspaceBytes } from './engine/model-cost.ts';
export type { ModelShape } from './engine/model-cost.ts';
export type { PlainLoopResult } from './engine/plain-loop.ts';
export { measureFold, vocabularyText } from './measure-fold.ts';
export type { FoldMeasurement } from './measure-fold.ts';
export * from './niah/index.ts';
export * from './drift/index.ts';
export { deviceCheck } from './device/device-check.ts';
export type { DeviceCheckRow } from './device/device-check.ts';
export { checkPrecisionBars, runPrecisionBench } from './precision/precision-bench.ts';
export type { PrecisionBenchOptions, PrecisionReport, PrecisionRow } from './precision/precision-bench.ts';
export { measureFidelity, measurePrecisionRun } from './precision/measure-precision.ts';
export type { Fidelity, FidelityOptions, PrecisionRun, PrecisionRunOptions } from './precision/measure-precision.ts';
export { PRECISION_SHAPES, parameterCount, randomCheckpointTensors } from './precision/shapes.ts';
export type { PrecisionShape } from './precision/shapes.ts';
export * from './llamacpp/index.ts';
export { measureBatch } from './batch/measure-batch.ts';
export type { BatchBenchOptions, BatchReport, BatchRow, BatchTiming } from './batch/measure-batch.ts';
