/** Needle-in-a-haystack harness: protocols, haystacks, the grid runner and its report. */
export { NiahError } from './errors.ts';
export type { NiahErrorCode } from './errors.ts';
export type { NiahGrid, PlannedHaystack } from './grid.ts';
export { checkGrid, planHaystacks } from './grid.ts';
export { writeHaystack, CLUSTER_GAP_UNITS } from './haystack.ts';
export type { Haystack, PlacedNeedle } from './haystack.ts';
export type { Needle, NiahProtocol, NiahTokenizer, ProtocolName } from './protocol.ts';
export { recallProtocol, recallVocabulary, DEFAULT_RECALL_NEEDLE_SIZE } from './recall-protocol.ts';
export { textProtocol, DEFAULT_TEXT_DIGITS, DEFAULT_TEXT_ANSWER_TOKENS } from './text-protocol.ts';
export { niahModel, prepareNiah, runNiah, selectProtocol } from './run-niah.ts';
export type { NiahHooks, NiahModel, NiahRun, NiahTrial } from './run-niah.ts';
export { chainBucket, chainTable, describePolicy, heatmaps, matchTable, reportMarkdown, summaryText, tally, windowTable } from './report.ts';
export type { CellStats, NiahReportInput } from './report.ts';
export { heatmapSvg } from './heatmap.ts';
export { gridOfTrials, openResults, readResults, writeReport, RESULTS_FILE, REPORT_FILE } from './output.ts';
export { matchColour, svgDocument, tokensLabel, xml } from './svg.ts';
