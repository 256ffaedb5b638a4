/**
 * The model's tokenizer (tokenizer.json through @huggingface/tokenizers) and chat template
 * (tokenizer_config.json's `chat_template` through @huggingface/jinja).
 *
 * Special tokens follow transformers' fast tokenizers, which @huggingface/tokenizers alone does
 * not: when tokenizer_config.json sets `add_bos_token` or `add_eos_token`, or names a tokenizer
 * class that always rebuilds its post-processor from them (Llama, Code Llama, Gemma: BOS on, EOS
 * off unless said), a document is `[bos] text [eos]` as those flags say and tokenizer.json's
 * post-processor is not used; otherwise the post-processor adds what it adds.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelError } from './errors.ts';
import type { ModelFolder } from './model-folder.ts';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** Input the vocabulary could not encode: it reached the model as `<unk>`. */
export interface UnknownText {
  /** `<unk>` ids in the encoding (consecutive unknown characters may fuse into one). */
  readonly tokens: number;
  /** Characters of the text that encode to `<unk>`, counted with repeats (0 where the model is not character-level). */
  readonly characters: number;
  /** How many different characters those are. */
  readonly distinct: number;
  /** The most frequent of them, with their counts (at most UNKNOWN_EXAMPLES). */
  readonly examples: readonly { readonly char: string; readonly count: number }[];
}

export interface Encoded {
  readonly ids: Int32Array; // [tokens]
  /** Null when every character was encoded. */
  readonly unknown: UnknownText | null;
}

/** What a tokenizer needs of a model folder. */
export type TokenizerSource = Pick<ModelFolder, 'dir' | 'tokenizerJson' | 'tokenizerConfig'>;

/** Tokenizer classes whose fast tokenizer builds its post-processor from the flags, with these defaults. */
const FLAG_TEMPLATE_CLASSES = new Map(
  (['LlamaTokenizer', 'CodeLlamaTokenizer', 'GemmaTokenizer'] as const).flatMap((c) => {
    const d = { bos: true, eos: false, bosToken: c === 'GemmaTokenizer' ? '<bos>' : '<s>', eosToken: c === 'GemmaTokenizer' ? '<eos>' : '</s>' };
    return [
      [c as string, d],
      [`${c}Fast`, d],
    ] as const;
  }),
);
/** Unknown characters named in a warning. */
const UNKNOWN_EXAMPLES = 5;
/** Tokenizer models whose units are characters, so a character that encodes to `<unk>` alone is unknown in any text. */
const CHARACTER_MODELS = new Set(['BPE', 'Unigram']);

export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template | null;
  /** BOS/EOS ids a document gets from the config's flags; null: from the post-processor. */
  private readonly wrap: { readonly bos: number | null; readonly eos: number | null } | null;
  private readonly unkId: number | null;
  private readonly characterModel: boolean;

  constructor(private readonly folder: TokenizerSource) {
    try {
      this.tokenizer = new Tokenizer(folder.tokenizerJson, folder.tokenizerConfig);
    } catch (err) {
      throw new ModelError('KVF_MODEL_MALFORMED', `${folder.dir}/tokenizer.json cannot be loaded: ${(err as Error).message}`, { cause: err });
    }
    const source = folder.tokenizerConfig.chat_template;
    this.template = typeof source === 'string' ? new Template(source) : null;
    this.wrap = this.specialTokensFromFlags();
    const model = folder.tokenizerJson.model as { type?: string; unk_token?: unknown } | undefined;
    this.unkId = typeof model?.unk_token === 'string' ? (this.tokenizer.token_to_id(model.unk_token) ?? null) : null;
    this.characterModel = CHARACTER_MODELS.has(model?.type ?? '');
  }

  /** Token ids of a document: BOS/EOS as transformers adds them (see the module comment). */
  encodeDocument(text: string): Int32Array {
    return this.encode(text, { document: true }).ids;
  }

  /** Token ids of text that continues a folded document: no special tokens added. */
  encodeContinuation(text: string): Int32Array {
    return this.encode(text, { document: false }).ids;
  }

  /** One encode of a document (with its special tokens) or a continuation, with what mapped to `<unk>`. */
  encode(text: string, options: { document: boolean }): Encoded {
    const plain = !options.document || this.wrap !== null;
    const core = this.tokenizer.encode(text, { add_special_tokens: !plain }).ids;
    const ids = options.document && this.wrap ? [...(this.wrap.bos === null ? [] : [this.wrap.bos]), ...core, ...(this.wrap.eos === null ? [] : [this.wrap.eos])] : core;
    return { ids: Int32Array.from(ids), unknown: this.unknownIn(text, core) };
  }

  /** Text of `ids`; none decode to '' (@huggingface/tokenizers throws on an empty list). */
  decode(ids: readonly number[], skipSpecial = true): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: skipSpecial });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  get vocab(): Map<string, number> {
    return this.tokenizer.get_vocab(true);
  }

  get hasChatTemplate(): boolean {
    return this.template !== null;
  }

  /**
   * Renders messages with the chat template and tokenizes the result without adding special
   * tokens again. `bos` is left out when `continuing`, since the folded document already began with it.
   */
  encodeChat(messages: readonly ChatMessage[], options: { continuing: boolean }): Int32Array {
    if (!this.template) {
      throw new ModelError(
        'KVF_MODEL_NO_CHAT_TEMPLATE',
        `model ${this.folder.dir} has no chat template (its tokenizer_config.json has no chat_template); drop --chat to ask questions as plain text`,
      );
    }
    const cfg = this.folder.tokenizerConfig;
    const text = this.template.render({
      messages,
      add_generation_prompt: true,
      bos_token: options.continuing ? '' : (tokenContent(cfg.bos_token) ?? ''),
      eos_token: tokenContent(cfg.eos_token) ?? '',
    });
    return this.encodeContinuation(text);
  }

  /** The config's add_bos_token / add_eos_token, where transformers lets them decide (module comment). */
  private specialTokensFromFlags(): { bos: number | null; eos: number | null } | null {
    const cfg = this.folder.tokenizerConfig;
    const klass = typeof cfg.tokenizer_class === 'string' ? FLAG_TEMPLATE_CLASSES.get(cfg.tokenizer_class) : undefined;
    const flagged = typeof cfg.add_bos_token === 'boolean' || typeof cfg.add_eos_token === 'boolean';
    if (!klass && !flagged) return null;
    const want = (flag: unknown, fallback: boolean) => (typeof flag === 'boolean' ? flag : fallback);
    const id = (which: 'bos_token' | 'eos_token', fallback: string | undefined): number | null => {
      // A flag without its token is dropped, as transformers does; a token outside the vocabulary is an error.
      const content = which in cfg ? tokenContent(cfg[which]) : fallback;
      if (content === undefined) return null;
      const found = this.tokenizer.token_to_id(content);
      if (found === undefined) {
        throw new ModelError(
          'KVF_MODEL_MALFORMED',
          `${this.folder.dir}/tokenizer_config.json adds ${which} ${JSON.stringify(content)}, which is not a token of tokenizer.json; fix ${which} or set add_${which.slice(0, 3)}_token to false`,
        );
      }
      return found;
    };
    return {
      bos: want(cfg.add_bos_token, klass?.bos ?? false) ? id('bos_token', klass?.bosToken) : null,
      eos: want(cfg.add_eos_token, klass?.eos ?? false) ? id('eos_token', klass?.eosToken) : null,
    };
  }

  /** Counts `<unk>` ids and, for character-level models, the characters behind them. */
  private unknownIn(text: string, ids: readonly number[]): UnknownText | null {
    if (this.unkId === null) return null;
    const tokens = ids.reduce((n, id) => n + (id === this.unkId ? 1 : 0), 0);
    if (tokens === 0) return null;
    const counts = new Map<string, number>();
    if (this.characterModel) {
      for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
      for (const ch of [...counts.keys()]) {
        if (!this.tokenizer.encode(ch, { add_special_tokens: false }).ids.includes(this.unkId)) counts.delete(ch);
      }
    }
    const examples = [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, UNKNOWN_EXAMPLES)
      .map(([char, count]) => ({ char, count }));
    return { tokens, characters: [...counts.values()].reduce((a, b) => a + b, 0), distinct: counts.size, examples };
  }
}

/** A warning line for input that reached the model as `<unk>`, naming `what` (e.g. "the document"). */
export function unknownWarning(what: string, unknown: UnknownText, modelDir: string): string {
  const n = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;
  if (unknown.characters === 0) {
    return `${what}: ${n(unknown.tokens, '<unk> token')}; the tokenizer of ${modelDir} cannot encode part of the text, so the model reads it as unknown`;
  }
  const shown = unknown.examples.map((e) => `${JSON.stringify(e.char)} x${e.count}`).join(', ');
  const more = unknown.distinct > unknown.examples.length ? ', ...' : '';
  return `${what}: ${n(unknown.characters, 'character')} (${unknown.distinct} distinct: ${shown}${more}) became ${n(unknown.tokens, '<unk> token')}; the tokenizer of ${modelDir} cannot encode them, so the model reads them as unknown`;
}

/** A special token's text: the string, or an AddedToken object's `content`. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && 'content' in v && typeof v.content === 'string') return v.content;
  return undefined;
}
