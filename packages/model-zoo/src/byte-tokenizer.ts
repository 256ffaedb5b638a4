/**
 * A byte-level BPE `tokenizer.json` (the GPT-2 / Llama-3 family's format) with no merges:
 * every UTF-8 byte is one token, so any text round-trips and token counts are byte counts.
 */

/** GPT-2's reversible byte -> printable-unicode table, as the ByteLevel pre-tokenizer uses. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(printable.includes(b) ? b : 256 + extra++);
  }
  return table;
}

export interface ByteTokenizerFiles {
  readonly tokenizer: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly bosId: number;
  readonly eosId: number;
  readonly vocabSize: number;
}

/** Special tokens follow the 256 byte tokens. */
const SPECIALS = ['<|begin_of_text|>', '<|end_of_text|>', '<|user|>', '<|assistant|>'] as const;

/** A chat template in the Jinja dialect transformers and @huggingface/jinja render. */
const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>' }}{{ message['content'] }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

export function byteLevelTokenizer(): ByteTokenizerFiles {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((ch, id) => {
    vocab[ch] = id;
  });
  const added = SPECIALS.map((content, i) => {
    vocab[content] = 256 + i;
    return { id: 256 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  });
  const bosId = 256;
  const eosId = 257;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: SPECIALS[0], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: SPECIALS[0], type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [SPECIALS[0]]: { id: SPECIALS[0], ids: [bosId], tokens: [SPECIALS[0]] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: SPECIALS[0],
    eos_token: SPECIALS[1],
    add_bos_token: true,
    add_eos_token: false,
    model_max_length: 131072,
    clean_up_tokenization_spaces: false,
    chat_template: CHAT_TEMPLATE,
  };
  return { tokenizer, tokenizerConfig, bosId, eosId, vocabSize: 256 + SPECIALS.length };
}
