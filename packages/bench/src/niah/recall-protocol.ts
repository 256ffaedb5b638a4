/**
 * The recall protocol (packages/model-zoo/RECALL.md, "Protocol"), written from the tokenizer's
 * vocabulary alone:
 *
 *   one needle per haystack (the paper's protocol):   needle `KEY v1 .. vk`     question `KEY`
 *   several needles per haystack:                      needle `KEY c v1 .. vk`   question `KEY c`
 *
 * v1..vk and the codes c are distinct needle tokens n*, each used once in the haystack; filler is
 * f* tokens. The induction head answers the token that followed the previous occurrence of the
 * current code token, so the question's last token (KEY, or the needle's own code c) selects its
 * needle and greedy decoding copies v1 .. vk, then `</s>`. Any vocabulary with these spellings
 * and a stop token expresses the protocol.
 */
import { NiahError } from './errors.ts';
import type { Needle, NiahProtocol, NiahTokenizer, ProtocolOptions } from './protocol.ts';
import { shuffled } from './rng.ts';

/** Spellings the protocol needs (RECALL.md's vocabulary). */
export const RECALL_KEY = 'KEY';
export const RECALL_NEEDLE_PREFIX = 'n';
export const RECALL_FILLER_PREFIX = 'f';
/** Values per needle when not chosen: a four-token answer, like a four-digit magic number. */
export const DEFAULT_RECALL_NEEDLE_SIZE = 4;

/** The recall tokens of a vocabulary, or why it has none. */
export function recallVocabulary(tokenizer: NiahTokenizer): { key: number; needles: number[]; fillers: number[] } | string {
  const key = tokenizer.tokenToId(RECALL_KEY);
  if (key === undefined) return `it has no "${RECALL_KEY}" token`;
  const run = (prefix: string) => {
    const ids: number[] = [];
    for (let i = 0; ; i++) {
      const id = tokenizer.tokenToId(`${prefix}${i}`);
      if (id === undefined) return ids;
      ids.push(id);
    }
  };
  const needles = run(RECALL_NEEDLE_PREFIX);
  const fillers = run(RECALL_FILLER_PREFIX);
  if (needles.length === 0) return `it has no needle tokens ${RECALL_NEEDLE_PREFIX}0, ${RECALL_NEEDLE_PREFIX}1, ...`;
  if (fillers.length === 0) return `it has no filler tokens ${RECALL_FILLER_PREFIX}0, ${RECALL_FILLER_PREFIX}1, ...`;
  // Each spelling must also come out of the tokenizer as that one token, not as pieces.
  const probe = `${RECALL_KEY} ${RECALL_NEEDLE_PREFIX}0 ${RECALL_FILLER_PREFIX}0`;
  const ids = Array.from(tokenizer.encodeContinuation(probe));
  if (ids.join() !== [key, needles[0], fillers[0]].join()) return `"${probe}" does not tokenize to its three tokens (got ids ${ids.join(' ')})`;
  return { key, needles, fillers };
}

export function recallProtocol(tokenizer: NiahTokenizer, stopTokens: readonly number[], options: ProtocolOptions, where: string): NiahProtocol {
  const vocab = recallVocabulary(tokenizer);
  if (typeof vocab === 'string') {
    throw new NiahError('KVF_NIAH_PROTOCOL', `the tokenizer of ${where} cannot express the recall protocol: ${vocab} (RECALL.md); use --protocol text`);
  }
  if (stopTokens.length === 0) {
    throw new NiahError('KVF_NIAH_PROTOCOL', `${where} has no eos_token_id: the recall protocol ends every answer with a stop token`);
  }
  const size = options.needleSize ?? DEFAULT_RECALL_NEEDLE_SIZE;
  const coded = options.needlesPerHaystack > 1;
  const perNeedle = size + (coded ? 1 : 0);
  const maxNeedles = Math.floor(vocab.needles.length / perNeedle);
  if (!Number.isInteger(size) || size < 1 || maxNeedles < 1) {
    throw new NiahError('KVF_NIAH_PROTOCOL', `a recall needle of ${size} values does not fit the ${vocab.needles.length} needle tokens of ${where}`);
  }
  const stop = new Set(stopTokens);
  const spell = (ids: readonly number[]) => (ids.length ? tokenizer.decode(ids, false) : '');
  const filler = (random: () => number) => Int32Array.of(vocab.fillers[Math.floor(random() * vocab.fillers.length)] as number);
  return {
    name: 'recall',
    prefix: tokenizer.encodeDocument(''),
    maxNewTokens: size + 1,
    maxQuestionTokens: coded ? 2 : 1,
    maxNeedles,
    needles(count, random) {
      const pool = shuffled(vocab.needles, random);
      return Array.from({ length: count }, (_, i): Needle => {
        const own = pool.slice(i * perNeedle, (i + 1) * perNeedle);
        const values = coded ? own.slice(1) : own;
        const head = coded ? [vocab.key, own[0] as number] : [vocab.key];
        return {
          tokens: Int32Array.from([...head, ...values]),
          question: Int32Array.from(head),
          expected: spell(values),
          judge(g) {
            const exact = g.stopReason === 'stop-token' && g.tokenIds.length === values.length && g.tokenIds.every((t, j) => t === values[j]);
            return { got: spell(g.tokenIds.filter((t) => !stop.has(t))), exact };
          },
        };
      });
    },
    filler,
    fill: (tokens, random) => Array.from({ length: tokens }, () => filler(random)),
  };
}
