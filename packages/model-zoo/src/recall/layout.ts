/**
 * The recall model's geometry: its vocabulary, the subspaces of its residual stream, and which
 * RoPE pairs each attention head uses. Everything else (weights, tokenizer, margin analysis)
 * reads these numbers from here, so the construction has one source of truth.
 *
 * Vocabulary (ids in this order):
 *   <unk> <s> </s> KEY n0 .. n{N-1} f0 .. f{F-1}
 * "Code" tokens are KEY and the needle tokens n*: each owns one slot of the match code. Every
 * other token (specials and fillers) is an "other" token: the model cannot tell them apart,
 * which is all a haystack needs.
 *
 * Residual stream ([hidden]):
 *   [0]              BIAS  constant 1 in every embedding: feeds the previous-token head's q and k
 *   T block [M]      own token: one-hot over the M = codes + 1 classes (code tokens, then "other")
 *   P block [M]      previous token: written by layer 0's o_proj
 *   O block [M]      copied token: written by layer 1's o_proj, read by lm_head
 */

/** Rotary dimensions per head; 128 RoPE pairs. */
export const HEAD_DIM = 256;
/** A large base spreads the 128 pair frequencies over 10 decades (1 down to ~1.2e-10 rad/token). */
export const ROPE_THETA = 1e10;
/** The model's advertised context: 128K tokens, the length of the paper's longest trials. */
export const DEFAULT_MAX_POSITIONS = 131072;
/**
 * The previous-token head uses the highest-frequency pairs j = 0..15 (1 down to 0.07 rad/token).
 * With all 16 at equal weight, offset 1 beats every other offset up to 131072 by 1.570 (in units
 * of one pair's full score); more pairs do not raise that margin (offsets 0 and 2 bind it).
 */
export const PREVIOUS_TOKEN_PAIRS = 16;
/**
 * The induction head may use a pair only if it turns less than this across the whole context, so
 * that a match scores at least cos(0.1) = 0.995 of its full value at any distance and a code in
 * the other half of the same pair leaks at most sin(0.1) = 0.0998.
 */
export const MAX_MATCH_ROTATION = 0.1;
/** 96 needle tokens: enough distinct values for any practical needle; at most 97 fit (98 code slots). */
export const DEFAULT_NEEDLE_TOKENS = 96;
/** A thousand filler words give haystacks that look varied; the model treats them all alike. */
export const DEFAULT_FILLER_TOKENS = 1000;

/** Token spellings. Needle and filler words are a letter and an index: n0, n1, ..., f0, f1, ... */
export const UNK_TOKEN = '<unk>';
export const BOS_TOKEN = '<s>';
export const EOS_TOKEN = '</s>';
export const KEY_TOKEN = 'KEY';
export const NEEDLE_PREFIX = 'n';
export const FILLER_PREFIX = 'f';

/** Token ids of the specials, fixed by their order in the vocabulary. */
export const UNK_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;
export const KEY_ID = 3;
/** The first needle id; needle i has id FIRST_NEEDLE_ID + i. */
export const FIRST_NEEDLE_ID = 4;

/** The recall model's dimensions, derived from the options. */
export interface RecallLayout {
  readonly needleTokens: number;
  readonly fillerTokens: number;
  readonly maxPositions: number;
  readonly vocabSize: number;
  /** First filler id; filler i has id firstFillerId + i. */
  readonly firstFillerId: number;
  /** Code tokens: KEY then the needles. Code c of a token: KEY is 0, needle i is 1 + i. */
  readonly codes: number;
  /** Classes of the one-hot blocks: the codes plus "other" (class index codes). */
  readonly classes: number;
  readonly hidden: number;
  /** Residual index of the constant bias component. */
  readonly bias: number;
  /** Residual index of class 0 in the own-token, previous-token and copied-token blocks. */
  readonly ownBlock: number;
  readonly previousBlock: number;
  readonly copiedBlock: number;
  /** The RoPE pair index of the first pair the induction head uses (it uses all pairs from here on). */
  readonly firstMatchPair: number;
  /** Code slots available: two per slow pair (both halves of the pair). */
  readonly codeSlots: number;
}

/** Options that shape the vocabulary and the context length. */
export interface RecallLayoutOptions {
  /** Needle (value) tokens n0..; default 96. */
  readonly needleTokens?: number;
  /** Filler tokens f0..; default 1000. */
  readonly fillerTokens?: number;
  /** Longest context the margins are guaranteed for; default 131072. */
  readonly maxPositions?: number;
}

/** RoPE angular frequency of pair j, in float64: theta^(-2j/headDim). */
export function pairFrequency(pair: number): number {
  return ROPE_THETA ** ((-2 * pair) / HEAD_DIM);
}

/** The first pair that turns by at most MAX_MATCH_ROTATION over maxPositions - 1 tokens. */
export function firstSlowPair(maxPositions: number): number {
  for (let j = 0; j < HEAD_DIM / 2; j++) {
    if (pairFrequency(j) * (maxPositions - 1) <= MAX_MATCH_ROTATION) return j;
  }
  return HEAD_DIM / 2;
}

/** Derives the layout; throws when the options ask for more needles than the code slots hold. */
export function recallLayout(options: RecallLayoutOptions = {}): RecallLayout {
  const needleTokens = options.needleTokens ?? DEFAULT_NEEDLE_TOKENS;
  const fillerTokens = options.fillerTokens ?? DEFAULT_FILLER_TOKENS;
  const maxPositions = options.maxPositions ?? DEFAULT_MAX_POSITIONS;
  for (const [name, value, min] of [
    ['needleTokens', needleTokens, 1],
    ['fillerTokens', fillerTokens, 1],
    ['maxPositions', maxPositions, 2],
  ] as const) {
    if (!Number.isInteger(value) || value < min) throw new RangeError(`recall: ${name} must be an integer >= ${min}, got ${value}`);
  }
  const firstMatchPair = firstSlowPair(maxPositions);
  if (firstMatchPair < PREVIOUS_TOKEN_PAIRS) {
    throw new RangeError(`recall: maxPositions ${maxPositions} is so small that slow pairs overlap the previous-token pairs`);
  }
  const codeSlots = 2 * (HEAD_DIM / 2 - firstMatchPair);
  const codes = 1 + needleTokens;
  if (codes > codeSlots) {
    throw new RangeError(
      `recall: ${needleTokens} needle tokens need ${codes} code slots but only ${codeSlots} pairs-halves turn less than ` +
        `${MAX_MATCH_ROTATION} rad over ${maxPositions} positions; use at most ${codeSlots - 1} needle tokens`,
    );
  }
  const classes = codes + 1;
  return {
    needleTokens,
    fillerTokens,
    maxPositions,
    vocabSize: FIRST_NEEDLE_ID + needleTokens + fillerTokens,
    firstFillerId: FIRST_NEEDLE_ID + needleTokens,
    codes,
    classes,
    hidden: 1 + 3 * classes,
    bias: 0,
    ownBlock: 1,
    previousBlock: 1 + classes,
    copiedBlock: 1 + 2 * classes,
    firstMatchPair,
    codeSlots,
  };
}

/** The class of a token id: its code (KEY 0, needle i 1 + i) or `layout.codes` for "other". */
export function tokenClass(layout: RecallLayout, id: number): number {
  if (id === KEY_ID) return 0;
  const needle = id - FIRST_NEEDLE_ID;
  if (needle >= 0 && needle < layout.needleTokens) return 1 + needle;
  return layout.codes;
}

/**
 * The head dimension holding code c in the induction head's q and k: code slots fill the slow
 * pairs from the slowest end, first half of the pair (dim j) then second half (dim j + headDim/2).
 */
export function codeDimension(layout: RecallLayout, code: number): number {
  const pair = HEAD_DIM / 2 - 1 - Math.floor(code / 2);
  if (pair < layout.firstMatchPair) throw new RangeError(`recall: code ${code} has no slow pair`);
  return code % 2 === 0 ? pair : pair + HEAD_DIM / 2;
}
