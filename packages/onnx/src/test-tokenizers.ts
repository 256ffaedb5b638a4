/**
 * Test support (`@kvfold/onnx/testing`): tokenizer.json / tokenizer_config.json pairs in the two
 * formats real decoders ship, built from a small corpus so that its words are whole tokens:
 *
 *   byteLevelBpe      GPT-2 / Llama 3 / Qwen: ByteLevel pre-tokenizer and decoder, `Ġ` for a space
 *   sentencePieceBpe  Llama 2 / TinyLlama / Mistral: `▁` for a space, byte fallback (`<0x0A>`), a
 *                     Replace + ByteFallback + Fuse + Strip decoder, and either `legacy` (a
 *                     Prepend("▁") + Replace normalizer and no pre-tokenizer: what TinyLlama
 *                     ships) or `metaspace` (a Metaspace pre-tokenizer that prepends `▁` to the
 *                     first section only: later conversions)
 *
 * Merges are added so that each corpus word (and each with its space marker) is one token; every
 * other character is a token of its own, or bytes, or `<unk>` where byte fallback is off.
 */
import { byteLevelTokenizer } from '@kvfold/model-zoo';
import { TextTokenizer } from './tokenizer.ts';

export interface TokenizerFiles {
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
}

/** Words the fixtures hold as whole tokens unless a corpus is given. */
export const DEFAULT_CORPUS =
  'The grass is green. The sky is blue. Here we go. There and back again. The river runs past the old mill. ' +
  'The special magic number is the one to remember. Question: What is it? Answer: a number.';

/** What the post-processor in tokenizer.json adds: BOS (`<s>` / `<|begin_of_text|>`), or nothing. */
type PostProcessor = 'bos' | 'none';

interface FixtureOptions {
  readonly corpus?: string;
  /** Merged over the default tokenizer_config.json (keys set to undefined are removed). */
  readonly config?: Record<string, unknown>;
  readonly postProcessor?: PostProcessor;
}

/** Adds merges that build `symbols` into one token, left to right, and every step to the vocab. */
function addWord(symbols: readonly string[], vocab: Record<string, number>, merges: string[], seen: Set<string>): void {
  let current = symbols[0] as string;
  for (const next of symbols.slice(1)) {
    const merge = `${current} ${next}`;
    if (!seen.has(merge)) {
      seen.add(merge);
      merges.push(merge);
    }
    current += next;
    if (!(current in vocab)) vocab[current] = Object.keys(vocab).length;
  }
}

const words = (corpus: string) => [...new Set(corpus.match(/[A-Za-z]+/g) ?? [])];

function template(bos: string, bosId: number, post: PostProcessor): Record<string, unknown> | null {
  if (post === 'none') return null;
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

function withConfig(base: Record<string, unknown>, over: Record<string, unknown> = {}): Record<string, unknown> {
  const out = { ...base, ...over };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

function bpeModel(vocab: Record<string, number>, merges: string[], extra: Record<string, unknown>): Record<string, unknown> {
  return { type: 'BPE', dropout: null, continuing_subword_prefix: null, end_of_word_suffix: null, ignore_merges: false, vocab, merges, ...extra };
}

/** A byte-level BPE (GPT-2 / Llama 3 style) whose corpus words are single tokens. */
export function byteLevelBpe(options: FixtureOptions = {}): TokenizerFiles {
  const base = byteLevelTokenizer(); // the 256 byte tokens, then the special tokens
  const vocab = { ...(base.tokenizer.model as { vocab: Record<string, number> }).vocab };
  const merges: string[] = [];
  const seen = new Set<string>();
  // Words after a space first: their merges outrank the bare words', as in a trained vocabulary.
  for (const w of words(options.corpus ?? DEFAULT_CORPUS)) addWord(['Ġ', ...w], vocab, merges, seen);
  for (const w of words(options.corpus ?? DEFAULT_CORPUS)) addWord([...w], vocab, merges, seen);
  const bos = '<|begin_of_text|>';
  const tokenizerJson = {
    ...base.tokenizer,
    post_processor: template(bos, base.bosId, options.postProcessor ?? 'bos'),
    model: bpeModel(vocab, merges, { unk_token: null, fuse_unk: false, byte_fallback: false }),
  };
  const config = { tokenizer_class: 'PreTrainedTokenizerFast', bos_token: bos, eos_token: '<|end_of_text|>', clean_up_tokenization_spaces: false };
  return { tokenizerJson, tokenizerConfig: withConfig(config, options.config) };
}

export interface SentencePieceOptions extends FixtureOptions {
  readonly style?: 'legacy' | 'metaspace';
  /** Unknown characters become their UTF-8 bytes (`<0xE2>`...) rather than `<unk>`. Default true. */
  readonly byteFallback?: boolean;
}

/** Characters every SentencePiece fixture holds as tokens (rarer ones fall back to bytes). */
const BASE_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;?!\'"-()';

/** A SentencePiece-style BPE (Llama 2 / TinyLlama): `▁` marks a space, bytes stand in for the rest. */
export function sentencePieceBpe(options: SentencePieceOptions = {}): TokenizerFiles {
  const specials = ['<unk>', '<s>', '</s>'];
  const vocab: Record<string, number> = {};
  for (const s of specials) vocab[s] = Object.keys(vocab).length;
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = Object.keys(vocab).length;
  for (const ch of ['▁', ...BASE_CHARS]) vocab[ch] = Object.keys(vocab).length;
  const merges: string[] = [];
  const seen = new Set<string>();
  for (const w of words(options.corpus ?? DEFAULT_CORPUS)) addWord(['▁', ...w], vocab, merges, seen);
  for (const w of words(options.corpus ?? DEFAULT_CORPUS)) addWord([...w], vocab, merges, seen);
  const legacy = (options.style ?? 'legacy') === 'legacy';
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: legacy
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] }
      : null,
    pre_tokenizer: legacy ? null : { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: template('<s>', 1, options.postProcessor ?? 'bos'),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: bpeModel(vocab, merges, { unk_token: '<unk>', fuse_unk: true, byte_fallback: options.byteFallback ?? true }),
  };
  const config = {
    tokenizer_class: 'LlamaTokenizer',
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    legacy,
    clean_up_tokenization_spaces: false,
  };
  return { tokenizerJson, tokenizerConfig: withConfig(config, options.config) };
}

/** A TextTokenizer over fixture files, as if read from `dir`. */
export function fixtureTokenizer(files: TokenizerFiles, dir = '/fixture'): TextTokenizer {
  return new TextTokenizer({ dir, ...files });
}
