/** Per-step drift between folded and single-pass logits: measurement, table, plot. */
export { ACTIVATION_COPIES, DEFAULT_REFERENCE_LIMIT_MIB, LOGIT_COPIES, SCORE_COPIES, compareRows, measureDrift, singlePassBytes } from './drift.ts';
export type { DriftInput, DriftResult, DriftStep, ModelDims } from './drift.ts';
export { driftDocument, modelDims } from './document.ts';
export { driftMarkdown, writeDrift } from './report.ts';
export { driftSvg } from './plot.ts';
