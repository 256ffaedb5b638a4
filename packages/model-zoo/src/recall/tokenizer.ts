/**
 * The recall model's tokenizer: one word, one token. A WordLevel `tokenizer.json` split on
 * whitespace, with `<s>` prepended as Llama tokenizers do, and no decoder (tokens are joined
 * with single spaces). Unknown words become `<unk>`, which the model treats as filler.
 */
import {
  BOS_ID,
  BOS_TOKEN,
  EOS_ID,
  EOS_TOKEN,
  FILLER_PREFIX,
  FIRST_NEEDLE_ID,
  KEY_ID,
  KEY_TOKEN,
  NEEDLE_PREFIX,
  type RecallLayout,
  UNK_ID,
  UNK_TOKEN,
} from './layout.ts';

/** Every token spelling, indexed by id. */
export function recallVocabulary(layout: RecallLayout): string[] {
  const words: string[] = [];
  words[UNK_ID] = UNK_TOKEN;
  words[BOS_ID] = BOS_TOKEN;
  words[EOS_ID] = EOS_TOKEN;
  words[KEY_ID] = KEY_TOKEN;
  for (let i = 0; i < layout.needleTokens; i++) words[FIRST_NEEDLE_ID + i] = `${NEEDLE_PREFIX}${i}`;
  for (let i = 0; i < layout.fillerTokens; i++) words[layout.firstFillerId + i] = `${FILLER_PREFIX}${i}`;
  return words;
}

/**
 * A chat template that only joins message contents with spaces: the model has no roles, and a
 * trial's question is plain text.
 */
const CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% if not loop.last %} {% endif %}{% endfor %}";

/** The `tokenizer.json` and `tokenizer_config.json` objects. */
export function recallTokenizer(layout: RecallLayout): {
  tokenizer: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
} {
  const words = recallVocabulary(layout);
  const vocab: Record<string, number> = {};
  words.forEach((word, id) => {
    vocab[word] = id;
  });
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(UNK_ID, UNK_TOKEN), special(BOS_ID, BOS_TOKEN), special(EOS_ID, EOS_TOKEN)],
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: BOS_TOKEN, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: BOS_TOKEN, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [BOS_TOKEN]: { id: BOS_TOKEN, ids: [BOS_ID], tokens: [BOS_TOKEN] } },
    },
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: UNK_TOKEN },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: BOS_TOKEN,
    eos_token: EOS_TOKEN,
    unk_token: UNK_TOKEN,
    add_bos_token: true,
    add_eos_token: false,
    model_max_length: layout.maxPositions,
    clean_up_tokenization_spaces: false,
    chat_template: CHAT_TEMPLATE,
  };
  return { tokenizer, tokenizerConfig };
}
