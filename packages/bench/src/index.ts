/** @kvfold/bench: benchmarks of the engine against a plain onnxruntime-node loop and ONNX Runtime's MatMul. */
export { DEFAULT_CASES, checkBars, runEngineBench } from './engine/engine-bench.ts';
export type { Bar, BenchCase, BenchModel, CaseResult, EngineBenchOptions, EngineBenchReport } from './engine/engine-bench.ts';
export { benchIds, measureEngine } from './engine/measure-engine.ts';
export type { Engine, EngineMeasurement, EngineRunOptions } from './engine/measure-engine.ts';
// The MatMul ceiling and the plain loop load onnxruntime-node; measureEngine imports them when it runs them.
export type { MatMulCeiling } from './engine/matmul-ceiling.ts';
export { foldFlops, matmulParams, shapeOf, stepWorkspaceBytes } from './engine/model-cost.ts';
export type { ModelShape } from './engine/model-cost.ts';
export type { PlainLoopResult } from './engine/plain-loop.ts';
