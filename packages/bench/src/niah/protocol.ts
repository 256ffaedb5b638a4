/**
 * What a needle-in-a-haystack protocol provides: how a needle, its question and the haystack's
 * filler are written in a model's tokens, and how an answer is judged. Two siblings, picked by what
 * the tokenizer can express (never by the model's name or path):
 *
 *   recall  the associative-recall vocabulary (KEY, n0.., f0..; packages/model-zoo/RECALL.md)
 *   text    natural-language needles as the paper writes them ("The special magic number is 7391.")
 */
import type { Generation } from '@kvfold/fold-core';
import type { ChatMessage } from '@kvfold/onnx';

/** The tokenizer calls a protocol needs; `TextTokenizer` of @kvfold/onnx provides them. */
export interface NiahTokenizer {
  readonly vocab: Map<string, number>;
  readonly hasChatTemplate: boolean;
  encodeDocument(text: string): Int32Array;
  encodeContinuation(text: string): Int32Array;
  encodeChat(messages: readonly ChatMessage[], options: { continuing: boolean }): Int32Array;
  decode(ids: readonly number[], skipSpecial?: boolean): string;
  tokenToId(token: string): number | undefined;
}

export type ProtocolName = 'recall' | 'text';

/** One needle: the tokens inserted in the haystack and the question that asks for it. */
export interface Needle {
  readonly tokens: Int32Array; // [needle tokens]
  readonly question: Int32Array; // [question tokens], read after the folded document
  /** The answer, as the report shows it. */
  readonly expected: string;
  /** Judges a generation: what was answered, and whether it is an exact match. */
  judge(generation: Generation): { got: string; exact: boolean };
}

/** A stream of filler: units that may not be split by a needle (one token, or one sentence). */
export type FillerUnit = Int32Array;

export interface NiahProtocol {
  readonly name: ProtocolName;
  /** What starts every document (the tokenizer's BOS, if it adds one). */
  readonly prefix: Int32Array;
  /** Tokens generated per answer: enough for the longest answer and the stop token. */
  readonly maxNewTokens: number;
  /** Tokens of the longest question this protocol asks. */
  readonly maxQuestionTokens: number;
  /** The most needles one haystack can hold with distinct answers. */
  readonly maxNeedles: number;
  /** `count` needles with distinct keys and answers, drawn with `random`. */
  needles(count: number, random: () => number): Needle[];
  /** The next filler unit. */
  filler(random: () => number): FillerUnit;
  /** Filler units of exactly `tokens` tokens in all, ending on a whole unit where the unit lengths allow. */
  fill(tokens: number, random: () => number): FillerUnit[];
}

/** Options shared by the protocols. */
export interface ProtocolOptions {
  /** Needles per haystack; above 1 every needle carries its own key, named by its question. */
  readonly needlesPerHaystack: number;
  /** Values per recall needle, or digits of a text needle's number. */
  readonly needleSize?: number;
  /** Wrap text questions in the model's chat template. */
  readonly chat?: boolean;
  /** Tokens generated per answer (text protocol; recall derives it from the needle size). */
  readonly maxNewTokens?: number;
}
