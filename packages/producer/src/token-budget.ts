/**
 * Token counts of a document bounded from its UTF-8 size, with no tokenizer run, so documents that
 * cannot fit are refused at ingest and documents that surely fit are packed without counting.
 *
 * Upper bound: tokens <= bytes + DOCUMENT_TOKEN_OVERHEAD. A byte-level BPE (GPT-2, Llama 3, Qwen2)
 * maps every input byte into exactly one token and each token holds at least one byte; a
 * SentencePiece BPE with byte fallback holds each character in one piece or in one token per byte;
 * `<unk>` replaces at least one character. None makes more tokens than bytes; the overhead covers
 * the BOS and EOS a post-processor adds and the leading `▁` a SentencePiece normalizer prepends.
 *
 * Lower bound from bytes: tokens >= ceil(bytes / L), with L the longest token of the model's
 * vocabulary in UTF-8 bytes: a token never stands for more input bytes than its own string has (a
 * byte-level character or a `▁` is one input byte written with 2-3 bytes). Only known when the
 * tokenizer.json is readable, and only when its normalizer cannot shrink text (Unicode
 * normalization composes or folds characters: `e` + U+0301 into `é`, `ﬁ` into `fi`).
 *
 * A real vocabulary has long tokens (runs of spaces, `=====`), so that bound proves only documents
 * far over the limit too long. For a document between the two bounds, `provenTooLong` reads it
 * with the vocabulary itself (token-floor.ts): the fewest pieces it can be cut into, a lower bound
 * close to the real count (within 5% on prose, 87% on source code in `pnpm bench:floor`), found
 * after reading about the limit's worth of text.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TokenFloor } from './token-floor.ts';

/** BOS + EOS added to a document, plus the prefix `▁` a SentencePiece normalizer may insert. */
export const DOCUMENT_TOKEN_OVERHEAD = 3;

/** The token limit documents must fit, and what is known about the model's vocabulary. */
export interface TokenBudget {
  /** Most tokens one document may have (the batch's maxTokensPerDocument). */
  readonly maxTokens: number;
  /** Longest vocabulary entry in UTF-8 bytes: proves documents far over the limit too long from their size. */
  readonly maxTokenBytes?: number;
  /** The vocabulary as pieces: proves a document too long from its text (provenTooLong). */
  readonly floor?: TokenFloor;
}

/** Bounds on the tokens of a document of `bytes` UTF-8 bytes. */
export interface TokenBounds {
  readonly lower: number;
  readonly upper: number;
}

/** Bounds on the tokens of `bytes` UTF-8 bytes under `budget` (lower is 0 without a vocabulary). */
export function tokenBounds(bytes: number, budget: TokenBudget): TokenBounds {
  const lower = budget.maxTokenBytes ? Math.ceil(bytes / budget.maxTokenBytes) : 0;
  return { lower, upper: bytes + DOCUMENT_TOKEN_OVERHEAD };
}

/** UTF-8 bytes a document may have and still certainly fit `maxTokens`. */
export function bytesThatFit(maxTokens: number): number {
  return Math.max(1, maxTokens - DOCUMENT_TOKEN_OVERHEAD);
}

/**
 * The order documents are folded in: those proven to fit `maxTokens` first, longest first (a long
 * tail of one big document is what makes a batch slow), then those that may not fit, longest
 * first, so a document over the limit never holds a worker before the rest. Ties by id.
 */
export function foldOrder<D extends { readonly bytes: number; readonly docId: string }>(docs: readonly D[], maxTokens: number): D[] {
  const limit = bytesThatFit(maxTokens);
  return [...docs].sort((a, b) => Number(a.bytes > limit) - Number(b.bytes > limit) || b.bytes - a.bytes || (a.docId < b.docId ? -1 : a.docId > b.docId ? 1 : 0));
}

/**
 * The proven token count of a document (its text, or its UTF-8 bytes) when it is over
 * `budget.maxTokens` (the floor's lower bound), else undefined: a document that may fit, or a
 * budget without a vocabulary. Reads the text only when its size does not already prove it fits.
 */
export function provenTooLong(document: string | Uint8Array, budget: TokenBudget): number | undefined {
  const bytes = typeof document === 'string' ? Buffer.byteLength(document, 'utf8') : document.byteLength;
  if (!budget.floor || bytes <= bytesThatFit(budget.maxTokens)) return undefined;
  const text = typeof document === 'string' ? document : Buffer.from(document.buffer, document.byteOffset, document.byteLength).toString('utf8');
  const lower = budget.floor.lowerBound(text, budget.maxTokens);
  return lower !== undefined && lower > budget.maxTokens ? lower : undefined;
}

/** Normalizers that may shrink text, which would break the lower bound from bytes. */
const SHRINKING_NORMALIZERS = new Set(['NFC', 'NFD', 'NFKC', 'NFKD', 'Precompiled']);

function normalizerShrinks(normalizer: unknown): boolean {
  if (normalizer === null || typeof normalizer !== 'object') return false;
  const n = normalizer as { type?: string; normalizers?: unknown[] };
  if (n.type && SHRINKING_NORMALIZERS.has(n.type)) return true;
  return Array.isArray(n.normalizers) && n.normalizers.some(normalizerShrinks);
}

/** A model folder's parsed tokenizer.json, or undefined when it is not there or not readable. */
async function readTokenizerJson(modelDir: string): Promise<TokenizerJson | undefined> {
  try {
    return JSON.parse(await readFile(join(modelDir, 'tokenizer.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

type TokenizerJson = { model?: { vocab?: unknown }; added_tokens?: Array<{ content?: string }>; normalizer?: unknown };

/** The longest vocabulary entry of a tokenizer.json in UTF-8 bytes; undefined when its normalizer may shrink text. */
function longestEntry(json: TokenizerJson): number | undefined {
  if (normalizerShrinks(json.normalizer)) return undefined;
  const vocab = json.model?.vocab;
  // BPE and WordPiece keep {token: id}; Unigram keeps [[piece, score], ...].
  const pieces: string[] = Array.isArray(vocab)
    ? vocab.map((v) => (Array.isArray(v) ? String(v[0]) : String(v)))
    : vocab && typeof vocab === 'object'
      ? Object.keys(vocab)
      : [];
  for (const t of json.added_tokens ?? []) if (typeof t.content === 'string') pieces.push(t.content);
  let longest = 0;
  for (const piece of pieces) longest = Math.max(longest, Buffer.byteLength(piece, 'utf8'));
  return longest > 0 ? longest : undefined;
}

/**
 * The longest vocabulary entry of the Hugging Face tokenizer.json in `modelDir`, in UTF-8 bytes;
 * undefined when the file is not there or not readable, or the normalizer may shrink text.
 */
export async function maxTokenBytesOf(modelDir: string): Promise<number | undefined> {
  const json = await readTokenizerJson(modelDir);
  return json && longestEntry(json);
}

/**
 * The budget of a batch: its `maxTokensPerDocument`, and the vocabulary's bounds when `model` (a
 * URI, or a spec's parsed model reference) is a model folder readable here, as a path or a file:// URI (an s3:// model or a folder only the
 * workers see gives the upper bound only; the workers then prove it with the same floor before
 * they tokenize).
 */
export async function tokenBudgetFor(model: string | { readonly uri: string }, maxTokens: number): Promise<TokenBudget> {
  const uri = typeof model === 'string' ? model : model.uri;
  const folder = uri.startsWith('file://') ? fileURLToPath(uri) : uri.includes('://') ? undefined : uri;
  const vocabulary = folder ? await vocabularyOf(folder) : undefined;
  return { maxTokens, ...vocabulary };
}

type Vocabulary = Pick<TokenBudget, 'maxTokenBytes' | 'floor'>;

/** The vocabulary bounds of the folders seen lately, by tokenizer.json's path, size and mtime. */
const vocabularies = new Map<string, Vocabulary>();
const VOCABULARIES_KEPT = 8;

/**
 * A model folder's vocabulary bounds, read once per version of its tokenizer.json (a Llama 3 one
 * is 9 MB of JSON: the API would parse it again for every batch); {} without a readable one.
 */
async function vocabularyOf(folder: string): Promise<Vocabulary> {
  const path = join(folder, 'tokenizer.json');
  const info = await stat(path).catch(() => undefined);
  if (!info) return {};
  const key = `${path}\0${info.size}\0${info.mtimeMs}`;
  const known = vocabularies.get(key);
  if (known) return known;
  const json = await readTokenizerJson(folder);
  if (!json) return {};
  const maxTokenBytes = longestEntry(json);
  const floor = TokenFloor.of(json);
  const vocabulary: Vocabulary = { ...(maxTokenBytes ? { maxTokenBytes } : {}), ...(floor ? { floor } : {}) };
  if (vocabularies.size >= VOCABULARIES_KEPT) vocabularies.delete(vocabularies.keys().next().value as string);
  vocabularies.set(key, vocabulary);
  return vocabulary;
}
