/**
 * A proven lower bound on the tokens of a text, from the model's tokenizer.json and no tokenizer
 * run: the fewest vocabulary pieces the text can be cut into.
 *
 * Why it holds: a BPE tokenizer's output, read back as the bytes it covers, is one way of cutting
 * the text (as its normalizer and pre-tokenizer rewrite it) into pieces the model can emit: base
 * symbols, merge results, byte-fallback bytes, `<unk>` for one character. Pre-tokenization only
 * forbids some cuts, so the fewest pieces over all cuts is at most the real count. The search
 * (a shortest path over a trie of those pieces) may allow cuts no tokenizer makes (any single
 * character as one piece, where the vocabulary has `<unk>`), which only lowers the minimum.
 *
 * Why it is cheap: the bound is known while reading. With `m[k]` the fewest pieces covering the
 * first k bytes and L the longest piece, every cut of the whole text has a boundary in (i-L, i],
 * so `min m[k] over that window + ceil((n - i) / L)` bounds the whole text at every i. Reading
 * stops as soon as that passes the limit, after about limit x bytes-per-token bytes, however long
 * the document is.
 *
 * What it refuses to prove (`of` answers undefined, or `lowerBound` does): a normalizer or
 * pre-tokenizer whose rewriting is not reproduced here exactly (regex replaces, precompiled
 * charsmaps, lowercasing), a model other than BPE, fused `<unk>` runs without byte fallback, and a
 * text holding an added token's content literally (added tokens split the text into sections that
 * are normalized and prefixed apart).
 */

/** GPT-2's byte -> printable character table (the ByteLevel pre-tokenizer's alphabet). */
function byteLevelAlphabet(): Map<string, number> {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const alphabet = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) alphabet.set(String.fromCharCode(printable(b) ? b : 256 + extra++), b);
  return alphabet;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const BYTE_FALLBACK_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** One rewriting step of the text, as the tokenizer applies it before the model. */
type Rewrite = (text: string) => string;

/** The normalizer as a rewrite, or undefined when it is not reproduced exactly here. */
function normalizerRewrite(n: unknown): Rewrite | undefined {
  if (n === null || n === undefined) return (t) => t;
  if (!isObject(n)) return undefined;
  switch (n.type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = n.type;
      return (t) => t.normalize(form);
    }
    case 'Prepend': {
      const prefix = n.prepend;
      return typeof prefix === 'string' ? (t) => (t === '' ? t : prefix + t) : undefined;
    }
    case 'Replace': {
      const pattern = isObject(n.pattern) ? n.pattern.String : undefined;
      const content = n.content;
      return typeof pattern === 'string' && pattern !== '' && typeof content === 'string' ? (t) => t.split(pattern).join(content) : undefined;
    }
    case 'Strip': {
      const left = n.strip_left !== false;
      const right = n.strip_right !== false;
      return (t) => (left && right ? t.trim() : left ? t.trimStart() : right ? t.trimEnd() : t);
    }
    case 'Sequence': {
      if (!Array.isArray(n.normalizers)) return undefined;
      const steps = n.normalizers.map(normalizerRewrite);
      if (steps.some((s) => s === undefined)) return undefined;
      return (t) => (steps as Rewrite[]).reduce((acc, step) => step(acc), t);
    }
    default:
      return undefined;
  }
}

/** What the pre-tokenizer does besides splitting (splitting only forbids cuts). */
interface PreTokenization {
  readonly byteLevel: boolean;
  readonly rewrite: Rewrite;
}

const SPLIT_ONLY = new Set(['Whitespace', 'WhitespaceSplit', 'Punctuation', 'Digits', 'Split', 'UnicodeScripts', 'CharDelimiterSplit']);

function preTokenization(p: unknown): PreTokenization | undefined {
  if (p === null || p === undefined) return { byteLevel: false, rewrite: (t) => t };
  if (!isObject(p)) return undefined;
  if (typeof p.type === 'string' && SPLIT_ONLY.has(p.type)) return { byteLevel: false, rewrite: (t) => t };
  if (p.type === 'ByteLevel') {
    const prefix = p.add_prefix_space === true;
    return { byteLevel: true, rewrite: (t) => (prefix && !t.startsWith(' ') ? ` ${t}` : t) };
  }
  if (p.type === 'Metaspace') {
    const replacement = typeof p.replacement === 'string' ? p.replacement : undefined;
    if (!replacement) return undefined;
    const scheme = typeof p.prepend_scheme === 'string' ? p.prepend_scheme : p.add_prefix_space === false ? 'never' : 'always';
    const prepend = scheme !== 'never';
    return { byteLevel: false, rewrite: (t) => {
      const replaced = t.split(' ').join(replacement);
      return prepend && replaced !== '' && !replaced.startsWith(replacement) ? replacement + replaced : replaced;
    } };
  }
  if (p.type === 'Sequence' && Array.isArray(p.pretokenizers)) {
    const steps = p.pretokenizers.map(preTokenization);
    if (steps.some((s) => s === undefined)) return undefined;
    const known = steps as PreTokenization[];
    // ByteLevel maps bytes to its alphabet: any rewrite after it would see that alphabet.
    const at = known.findIndex((s) => s.byteLevel);
    if (at !== -1 && at !== known.length - 1) return undefined;
    return { byteLevel: at !== -1, rewrite: (t) => known.reduce((acc, s) => s.rewrite(acc), t) };
  }
  return undefined;
}

/** The pieces a BPE model can emit: its base symbols and merge results (every vocab entry under ignore_merges). */
function emittablePieces(model: Json): string[] | undefined {
  const vocab = model.vocab;
  if (!isObject(vocab)) return undefined;
  const pieces = Object.keys(vocab);
  if (model.ignore_merges === true) return pieces;
  const merged = new Set<string>();
  for (const m of Array.isArray(model.merges) ? model.merges : []) {
    if (typeof m === 'string') {
      const space = m.indexOf(' ');
      if (space > 0) merged.add(m.slice(0, space) + m.slice(space + 1));
    } else if (Array.isArray(m) && typeof m[0] === 'string' && typeof m[1] === 'string') {
      merged.add(m[0] + m[1]);
    }
  }
  // A piece no merge makes is emitted only as a base symbol: one character (or byte-fallback byte).
  return pieces.filter((p) => merged.has(p) || [...p].length === 1 || BYTE_FALLBACK_PIECE.test(p));
}

/** A byte trie: child of (node, byte) in one map, terminal nodes marked. */
class ByteTrie {
  readonly #next = new Map<number, number>();
  readonly #terminal: boolean[] = [false];

  add(bytes: ArrayLike<number>): void {
    let node = 0;
    for (let i = 0; i < bytes.length; i++) {
      const key = node * 256 + (bytes[i] as number);
      let child = this.#next.get(key);
      if (child === undefined) {
        child = this.#terminal.length;
        this.#terminal.push(false);
        this.#next.set(key, child);
      }
      node = child;
    }
    this.#terminal[node] = true;
  }

  /** For every piece that starts at `from` in `bytes`, lowers `m` at its end (a ring of `size`) to `value`. */
  relax(bytes: Uint8Array, from: number, m: Float64Array, size: number, value: number): void {
    let node = 0;
    for (let i = from; i < bytes.length; i++) {
      const child = this.#next.get(node * 256 + (bytes[i] as number));
      if (child === undefined) return;
      node = child;
      if (this.#terminal[node]) {
        const at = (i + 1) % size;
        if (value < (m[at] as number)) m[at] = value;
      }
    }
  }
}

/** Bytes of the UTF-8 character whose first byte is `b` (1 for a continuation byte). */
const charLength = (b: number) => (b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4);

export class TokenFloor {
  /** The longest piece, in bytes of the rewritten input. */
  readonly longestPiece: number;
  readonly #pieces: readonly Uint8Array[];
  readonly #rewrite: Rewrite;
  /** Any added token's content, as one alternation (one pass over a text, not one per token). */
  readonly #addedTokens: RegExp | undefined;
  /** Whether any one character may be one piece (`<unk>`): when some byte has no piece of its own. */
  readonly #anyChar: boolean;
  #trie: ByteTrie | undefined;

  private constructor(pieces: Uint8Array[], rewrite: Rewrite, addedTokens: string[], anyChar: boolean) {
    this.#pieces = pieces;
    this.#rewrite = rewrite;
    this.#addedTokens = addedTokens.length > 0 ? new RegExp(addedTokens.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')) : undefined;
    this.#anyChar = anyChar;
    this.longestPiece = pieces.reduce((max, p) => Math.max(max, p.length), anyChar ? 4 : 1);
  }

  /** The floor of a parsed tokenizer.json, or undefined when its pipeline is not one this proves bounds for. */
  static of(tokenizerJson: unknown): TokenFloor | undefined {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) return undefined;
    const model = tokenizerJson.model;
    if (model.type !== undefined && model.type !== 'BPE') return undefined;
    const byteFallback = model.byte_fallback === true;
    const unk = typeof model.unk_token === 'string';
    // Fused <unk> runs cover any length; affixes make pieces longer than what they cover.
    if (!byteFallback && unk && model.fuse_unk === true) return undefined;
    if ((typeof model.continuing_subword_prefix === 'string' && model.continuing_subword_prefix !== '') || (typeof model.end_of_word_suffix === 'string' && model.end_of_word_suffix !== '')) return undefined;
    const normalize = normalizerRewrite(tokenizerJson.normalizer);
    const pre = preTokenization(tokenizerJson.pre_tokenizer);
    const emittable = emittablePieces(model);
    if (!normalize || !pre || !emittable) return undefined;
    const alphabet = pre.byteLevel ? byteLevelAlphabet() : undefined;
    const encoder = new TextEncoder();
    const pieces: Uint8Array[] = [];
    for (const piece of emittable) {
      if (alphabet) {
        const chars = [...piece];
        const bytes = chars.map((c) => alphabet.get(c));
        if (bytes.every((b) => b !== undefined)) pieces.push(Uint8Array.from(bytes as number[]));
        continue;
      }
      const fallback = byteFallback ? BYTE_FALLBACK_PIECE.exec(piece) : null;
      pieces.push(fallback ? Uint8Array.of(Number.parseInt(fallback[1] as string, 16)) : encoder.encode(piece));
    }
    // Every byte its own piece (a byte-level alphabet, or byte fallback): any text can be cut into
    // pieces. Otherwise a character the vocabulary lacks is `<unk>` (one character, one piece) or,
    // without `<unk>`, dropped, which no bound from pieces can count.
    const everyByte = new Set(pieces.filter((p) => p.length === 1).map((p) => p[0])).size === 256 && (alphabet !== undefined || byteFallback);
    if (!everyByte && !unk) return undefined;
    const added = Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : [];
    const addedTokens = added.flatMap((t) => (isObject(t) && typeof t.content === 'string' && t.content !== '' ? [t.content] : []));
    return new TokenFloor(pieces, (t) => pre.rewrite(normalize(t)), addedTokens, !everyByte);
  }

  /**
   * A lower bound on the tokens the model's tokenizer makes of `text` (BOS/EOS not counted), or
   * undefined when `text` holds an added token literally. With `limit`, reading stops as soon as
   * the bound passes it (the answer is then over `limit`, not the full minimum).
   */
  lowerBound(text: string, limit = Number.POSITIVE_INFINITY): number | undefined {
    if (this.#addedTokens?.test(text)) return undefined;
    const bytes = Buffer.from(this.#rewrite(text), 'utf8');
    const n = bytes.length;
    const trie = this.#trieOf();
    const span = this.longestPiece;
    // m over a ring: positions i .. i + span are live while i is read.
    const size = span + 1;
    const m = new Float64Array(size).fill(Number.POSITIVE_INFINITY);
    m[0] = 0;
    // Monotonic deque of (position, m) for the window minimum over (i - span, i].
    const dequePos = new Int32Array(size + 1);
    const dequeVal = new Float64Array(size + 1);
    let head = 0;
    let tail = 0;
    let best = Math.ceil(n / span);
    for (let i = 0; i <= n; i++) {
      const here = m[i % size] as number;
      m[i % size] = Number.POSITIVE_INFINITY; // the slot now serves i + size
      while (tail > head && (dequeVal[(tail - 1) % (size + 1)] as number) >= here) tail--;
      dequePos[tail % (size + 1)] = i;
      dequeVal[tail % (size + 1)] = here;
      tail++;
      while ((dequePos[head % (size + 1)] as number) <= i - span) head++;
      const windowMin = dequeVal[head % (size + 1)] as number;
      if (Number.isFinite(windowMin)) best = Math.max(best, windowMin + Math.ceil((n - i) / span));
      if (best > limit || i === n) break;
      if (!Number.isFinite(here)) continue;
      trie.relax(bytes, i, m, size, here + 1);
      if (this.#anyChar) {
        const char = (i + Math.min(charLength(bytes[i] as number), n - i)) % size;
        if (here + 1 < (m[char] as number)) m[char] = here + 1;
      }
    }
    return best;
  }

  #trieOf(): ByteTrie {
    if (!this.#trie) {
      const trie = new ByteTrie();
      for (const piece of this.#pieces) trie.add(piece);
      this.#trie = trie;
    }
    return this.#trie;
  }
}
