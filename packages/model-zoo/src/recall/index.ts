/**
 * recall: a 2-layer Llama-architecture model whose weights are set by hand so that greedy
 * decoding solves associative recall exactly, at any depth up to 128K tokens. It is the
 * instrument for needle-in-a-haystack runs on a CPU. RECALL.md holds the construction, its
 * margins and the trial protocol.
 */
import type { LlamaConfig, LlamaSpec } from '../llama-spec.ts';
import {
  BOS_ID,
  EOS_ID,
  HEAD_DIM,
  PREVIOUS_TOKEN_PAIRS,
  ROPE_THETA,
  type RecallLayoutOptions,
  UNK_ID,
  recallLayout,
} from './layout.ts';
import { recallTokenizer } from './tokenizer.ts';
import { LOGIT_SCALE, MATCH_SCORE, MLP_WIDTH, PREVIOUS_SCORE_PER_PAIR, RMS_NORM_EPS, recallWeights } from './weights.ts';

export {
  BOS_ID,
  BOS_TOKEN,
  DEFAULT_FILLER_TOKENS,
  DEFAULT_MAX_POSITIONS,
  DEFAULT_NEEDLE_TOKENS,
  EOS_ID,
  EOS_TOKEN,
  FILLER_PREFIX,
  FIRST_NEEDLE_ID,
  KEY_ID,
  KEY_TOKEN,
  NEEDLE_PREFIX,
  UNK_ID,
  UNK_TOKEN,
  recallLayout,
  tokenClass,
} from './layout.ts';
export type { RecallLayout, RecallLayoutOptions } from './layout.ts';
export { recallTrial, expectedAnswer, expectedContinuation } from './protocol.ts';
export type { RecallTrial, TrialOptions } from './protocol.ts';
export { recallVocabulary } from './tokenizer.ts';
export { analyseInductionHead, analysePreviousTokenHead, analyseReadout } from './margins.ts';
export type { InductionHeadReport, MarginOptions, PreviousTokenHeadReport, ReadoutReport } from './margins.ts';
export { ReferenceDecoder, argmax, greedyGenerate } from './reference-forward.ts';
export type { Precision } from './reference-forward.ts';

/** Options of the recall model: vocabulary sizes and the context length its margins cover. */
export type RecallOptions = RecallLayoutOptions;

/** The recall model as a LlamaSpec: config, hand-set weights, tokenizer and a description. */
export function recallSpec(options: RecallOptions = {}): LlamaSpec {
  const layout = recallLayout(options);
  const config: LlamaConfig = {
    vocab_size: layout.vocabSize,
    hidden_size: layout.hidden,
    intermediate_size: MLP_WIDTH,
    num_hidden_layers: 2,
    num_attention_heads: 1,
    num_key_value_heads: 1,
    head_dim: HEAD_DIM,
    rope_theta: ROPE_THETA,
    rms_norm_eps: RMS_NORM_EPS,
    max_position_embeddings: layout.maxPositions,
    tie_word_embeddings: false,
    bos_token_id: BOS_ID,
    eos_token_id: EOS_ID,
    pad_token_id: UNK_ID,
  };
  const { tokenizer, tokenizerConfig } = recallTokenizer(layout);
  const slowPairs = HEAD_DIM / 2 - layout.firstMatchPair;
  const description = [
    'recall: a 2-layer Llama-architecture model with hand-set weights that solves associative recall exactly.',
    '',
    `Vocabulary (${layout.vocabSize}): <unk> <s> </s> KEY, needle tokens n0..n${layout.needleTokens - 1}, filler tokens f0..f${layout.fillerTokens - 1}; one word per token.`,
    'A trial: a haystack of filler tokens with a needle `KEY v1 .. vk` (distinct needle tokens, each used once) anywhere in it, then',
    'the question `KEY` as the last token. Greedy decoding answers `v1 .. vk </s>`. KEY occurs exactly twice in the prompt.',
    '',
    `Layer 0 is a previous-token head on RoPE's ${PREVIOUS_TOKEN_PAIRS} fastest pairs (score ${PREVIOUS_SCORE_PER_PAIR} per pair);`,
    `layer 1 an induction head matching codes on the ${slowPairs} slowest pairs (match score ${MATCH_SCORE}); MLPs are zero;`,
    `lm_head maps the copied needle to its token (logit ${LOGIT_SCALE}) and anything else to </s>.`,
    `hidden ${layout.hidden}, 1 head of ${HEAD_DIM}, rope_theta ${ROPE_THETA}; margins proven for every offset up to ${layout.maxPositions} positions.`,
  ].join('\n');
  return {
    name: 'recall',
    config,
    weights: recallWeights(layout),
    tokenizer,
    tokenizerConfig,
    generationConfig: { bos_token_id: BOS_ID, eos_token_id: EOS_ID, pad_token_id: UNK_ID, do_sample: false },
    description,
  };
}
