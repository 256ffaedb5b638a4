/** The CPU peer benchmark: GGUF files of our checkpoints, llama.cpp (node-llama-cpp) runs, and the side-by-side report. */
export { BLOCK_BYTES, BLOCK_VALUES, encodeQ4_0, encodeQ8_0, GGML_TYPE_IDS, ggmlBytes } from './ggml-blocks.ts';
export type { GgmlType } from './ggml-blocks.ts';
export { GGUF_ALIGNMENT, writeGguf } from './gguf-file.ts';
export type { GgufTensor, GgufValue, WrittenGguf } from './gguf-file.ts';
export { GGUF_FILE_TYPES, llamaMetadata, permuteRopeRows, standInVocabulary, writeLlamaGguf } from './gguf-writer.ts';
export type { LlamaGguf } from './gguf-writer.ts';
export { DEFAULT_PEER_DIR, ensurePeerInstalled, installedPeerVersion, NODE_LLAMA_CPP_VERSION } from './install.ts';
export { argmax, llamaCppGreedy, measureLlamaCpp, PEER_KV_TYPES } from './llamacpp-run.ts';
export type { GreedyOptions, GreedyRun, LlamaCppRun, LlamaCppRunOptions, LlamaCppSession, PeerKv } from './llamacpp-run.ts';
export { oursGreedy } from './ours-greedy.ts';
export type { OursGreedyOptions } from './ours-greedy.ts';
export { checkPeerBars, compareGreedy, PEER_SHAPES, PEER_WIDTHS, peerTable, runPeerBench } from './peer-bench.ts';
export type { Agreement, Medians, PeerBenchOptions, PeerReport, PeerRow, PeerShape, PeerWidth } from './peer-bench.ts';
