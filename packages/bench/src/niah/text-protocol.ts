/**
 * The natural-language protocol, as the paper and the usual NIAH harnesses write it: a needle
 * sentence "The special magic number is 7391." in a haystack of filler prose, the question "What is
 * the special magic number?", and an exact match on the digits of the answer. With several needles
 * per haystack each number belongs to a named key ("The special magic number for amber is ...").
 *
 * Haystacks are built in token space, so each sentence, needle and question carries the ids it has
 * inside the whole prompt, and the protocol checks, for this tokenizer, that units placed side by
 * side are the encoding of their joined text: a prompt's ids are what one encode of its text gives.
 */
import { NiahError } from './errors.ts';
import { fillExactly } from './fill.ts';
import type { Needle, NiahProtocol, NiahTokenizer, ProtocolOptions } from './protocol.ts';
import { shuffled } from './rng.ts';

/**
 * What every unit follows in a haystack: the end of a sentence. Units are encoded after it and its
 * own ids stripped, so that each unit has the ids it has inside the document: a SentencePiece
 * tokenizer encoding " The grass" alone prepends a second `▁` that the document does not have.
 */
const ANCHOR = '.';

/** Digits of the magic number when not chosen: seven, as the paper's needles. */
export const DEFAULT_TEXT_DIGITS = 7;
/** Tokens generated per answer when not chosen: room for the number and a few words before it. */
export const DEFAULT_TEXT_ANSWER_TOKENS = 24;

/** Filler prose: plain sentences repeated in a seeded order (the classic NIAH haystack). */
const FILLER_SENTENCES = [
  'The grass is green.',
  'The sky is blue.',
  'The sun is yellow.',
  'Here we go.',
  'There and back again.',
  'The river runs past the old mill.',
  'A quiet wind moves through the trees.',
  'The market opens early on Saturdays.',
  'Clouds gather over the hills in the evening.',
  'The library keeps its doors open late.',
  'A train passes the station every hour.',
  'The garden needs water after a dry week.',
];

/** Keys of the needles when a haystack holds several. */
const NEEDLE_KEYS = [
  'amber', 'basalt', 'cedar', 'delta', 'ember', 'fjord', 'garnet', 'harbor', 'indigo', 'juniper', 'kestrel', 'lantern',
  'meadow', 'nickel', 'orchid', 'pewter', 'quartz', 'raven', 'saffron', 'tundra', 'umber', 'violet', 'willow', 'zephyr',
];

export function textProtocol(tokenizer: NiahTokenizer, stopTokens: readonly number[], options: ProtocolOptions, where: string): NiahProtocol {
  const digits = options.needleSize ?? DEFAULT_TEXT_DIGITS;
  if (!Number.isInteger(digits) || digits < 1 || digits > 15) {
    throw new NiahError('KVF_NIAH_BAD_GRID', `--needle-size ${digits}: a magic number needs 1 to 15 digits`);
  }
  if (options.chat && !tokenizer.hasChatTemplate) {
    throw new NiahError('KVF_NIAH_PROTOCOL', `${where}/tokenizer_config.json has no chat_template; drop --chat`);
  }
  const coded = options.needlesPerHaystack > 1;
  const refuse = (why: string) =>
    new NiahError('KVF_NIAH_PROTOCOL', `the tokenizer of ${where} cannot express the text protocol: ${why}; use a model whose tokenizer writes English text, or --protocol recall`);
  const anchor = tokenizer.encodeContinuation(ANCHOR);
  /** The ids `text` has where the haystack puts it, after the end of a sentence. */
  const inContext = (text: string, what: string): Int32Array => {
    const ids = tokenizer.encodeContinuation(ANCHOR + text);
    const back = tokenizer.decode(Array.from(ids), true);
    if (back !== ANCHOR + text) throw refuse(`the ${what} ${JSON.stringify(text.trim())} comes back as ${JSON.stringify(back.slice(ANCHOR.length).trim())}`);
    if (!startsWith(ids, anchor)) throw refuse(`the ${what} ${JSON.stringify(text.trim())} changes the tokens of the sentence end before it`);
    return ids.slice(anchor.length);
  };
  /** Checks that the units' ids, placed one after the other, are the ids of their texts joined. */
  const joinsCleanly = (parts: readonly { text: string; ids: Int32Array }[]) => {
    const joined = tokenizer.encodeContinuation(ANCHOR + parts.map((p) => p.text).join(''));
    const built = [...anchor, ...parts.flatMap((p) => [...p.ids])];
    if (joined.length !== built.length || joined.some((id, i) => id !== built[i])) {
      throw refuse(`its tokens merge across the boundary in ${JSON.stringify(parts.map((p) => p.text).join('').trim())}, so a haystack of sentences is not its own encoding`);
    }
  };
  const sentences = FILLER_SENTENCES.map((s) => ({ text: ` ${s}`, ids: inContext(` ${s}`, 'filler sentence') }));
  for (const a of sentences) for (const b of sentences) joinsCleanly([a, b]);
  const units = sentences.map((s) => s.ids);
  const stop = new Set(stopTokens);
  const question = (key: string | null) => {
    const ask = key ? `What is the special magic number for ${key}?` : 'What is the special magic number?';
    if (options.chat) return tokenizer.encodeChat([{ role: 'user', content: `${ask} Answer with the number only.` }], { continuing: true });
    const text = `\n\nQuestion: ${ask}\nAnswer: The special magic number${key ? ` for ${key}` : ''} is`;
    const ids = inContext(text, 'question');
    joinsCleanly([sentences[0] as { text: string; ids: Int32Array }, { text, ids }]);
    return ids;
  };
  return {
    name: 'text',
    prefix: tokenizer.encodeDocument(''),
    maxNewTokens: options.maxNewTokens ?? DEFAULT_TEXT_ANSWER_TOKENS,
    maxQuestionTokens: Math.max(...(coded ? NEEDLE_KEYS : [null]).map((k) => question(k).length)),
    maxNeedles: coded ? NEEDLE_KEYS.length : 1,
    needles(count, random) {
      const keys = shuffled(NEEDLE_KEYS, random);
      const used = new Set<string>();
      return Array.from({ length: count }, (_, i): Needle => {
        let number: string;
        do {
          number = String(1 + Math.floor(random() * 9)) + Array.from({ length: digits - 1 }, () => Math.floor(random() * 10)).join('');
        } while (used.has(number));
        used.add(number);
        const key = coded ? (keys[i] as string) : null;
        const text = ` The special magic number${key ? ` for ${key}` : ''} is ${number}.`;
        const tokens = inContext(text, 'needle');
        const first = sentences[0] as { text: string; ids: Int32Array };
        joinsCleanly([first, { text, ids: tokens }, first]);
        return {
          tokens,
          question: question(key),
          expected: number,
          judge(g) {
            const ids = g.tokenIds.filter((t) => !stop.has(t));
            const got = ids.length ? tokenizer.decode(ids, true).trim() : '';
            return { got, exact: /\d+/.exec(got)?.[0] === number };
          },
        };
      });
    },
    filler: (random) => units[Math.floor(random() * units.length)] as Int32Array,
    fill: (tokens, random) => fillExactly(units, tokens, random),
  };
}

const startsWith = (ids: Int32Array, prefix: Int32Array) => prefix.length <= ids.length && prefix.every((id, i) => ids[i] === id);
