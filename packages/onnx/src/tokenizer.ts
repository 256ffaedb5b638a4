/**
 * The model's tokenizer (tokenizer.json through @huggingface/tokenizers) and chat template
 * (tokenizer_config.json's `chat_template` through @huggingface/jinja).
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelError } from './errors.ts';
import type { ModelFolder } from './model-folder.ts';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template | null;

  constructor(private readonly folder: ModelFolder) {
    try {
      this.tokenizer = new Tokenizer(folder.tokenizerJson, folder.tokenizerConfig);
    } catch (err) {
      throw new ModelError('KVF_MODEL_MALFORMED', `${folder.dir}/tokenizer.json cannot be loaded: ${(err as Error).message}`, { cause: err });
    }
    const source = folder.tokenizerConfig.chat_template;
    this.template = typeof source === 'string' ? new Template(source) : null;
  }

  /** Token ids of a document: special tokens (e.g. BOS) as the tokenizer's post-processor adds them. */
  encodeDocument(text: string): Int32Array {
    return Int32Array.from(this.tokenizer.encode(text, { add_special_tokens: true }).ids);
  }

  /** Token ids of text that continues a folded document: no special tokens added. */
  encodeContinuation(text: string): Int32Array {
    return Int32Array.from(this.tokenizer.encode(text, { add_special_tokens: false }).ids);
  }

  decode(ids: readonly number[], skipSpecial = true): string {
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
    if (!this.template) throw new ModelError('KVF_MODEL_MALFORMED', `${this.folder.dir}/tokenizer_config.json has no chat_template`);
    const cfg = this.folder.tokenizerConfig;
    const special = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'object' && v && 'content' in v ? String(v.content) : '');
    const text = this.template.render({
      messages,
      add_generation_prompt: true,
      bos_token: options.continuing ? '' : special(cfg.bos_token),
      eos_token: special(cfg.eos_token),
    });
    return this.encodeContinuation(text);
  }
}
