/**
 * The natural-language NIAH protocol on tokenizers the tests build (byte-level BPE, and
 * SentencePiece-style BPEs with `▁` and byte fallback, as Llama 2 and TinyLlama ship), loaded by
 * @huggingface/tokenizers: a haystack built in token space, with its question, is exactly what one
 * encode of its text gives; and filler fills an exact count in whole sentences.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { byteLevelBpe, fixtureTokenizer, sentencePieceBpe } from '@kvfold/onnx/testing';
import { fillExactly } from './fill.ts';
import { writeHaystack } from './haystack.ts';
import { textProtocol } from './text-protocol.ts';

const tokenizers = {
  'byte-level BPE': byteLevelBpe(),
  'SentencePiece BPE, legacy normalizer (TinyLlama)': sentencePieceBpe(),
  'SentencePiece BPE, Metaspace pre-tokenizer': sentencePieceBpe({ style: 'metaspace' }),
};

describe('text protocol haystacks are their own encoding', () => {
  for (const [name, files] of Object.entries(tokenizers)) {
    test(name, () => {
      const tokenizer = fixtureTokenizer(files);
      const protocol = textProtocol(tokenizer, [], { needlesPerHaystack: 3 }, '/fixture');
      for (const seed of [1, 2, 3]) {
        const h = writeHaystack(protocol, 700, [0, 0.5, 0.75], seed);
        assert.equal(h.tokens.length, 700);
        for (const placed of h.needles) {
          const prompt = [...h.tokens, ...placed.needle.question];
          const text = tokenizer.decode(prompt);
          assert.deepEqual([...tokenizer.encodeDocument(text)], prompt, `seed ${seed}: one encode of ${JSON.stringify(text.slice(-80))}`);
          const pieces = prompt.map((id) => tokenizer.idToToken(id) ?? '');
          assert.equal(pieces.filter((p, i) => p === '▁' && pieces[i + 1]?.startsWith('▁')).length, 0, 'no doubled ▁ at a sentence boundary');
          assert.deepEqual([...h.tokens.subarray(placed.position, placed.position + placed.needle.tokens.length)], [...placed.needle.tokens]);
          assert.match(tokenizer.decode([...placed.needle.tokens]), new RegExp(`The special magic number for \\w+ is ${placed.needle.expected}\\.`));
        }
        assert.match(tokenizer.decode([...h.tokens]), /\.$/, 'the filler ends on a whole sentence');
      }
    });
  }
});

describe('filler to an exact count', () => {
  const unit = (n: number, v: number) => new Int32Array(n).fill(v);
  test('units of coprime lengths make every count above the Frobenius number in whole units', () => {
    const units = [unit(5, 1), unit(7, 2)];
    let seed = 0;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let tokens = 24; tokens <= 300; tokens++) {
      const out = fillExactly(units, tokens, random);
      assert.equal(out.reduce((n, u) => n + u.length, 0), tokens);
      assert.ok(out.every((u) => u.length === 5 || u.length === 7), `${tokens}: whole units`);
    }
  });
  test('a count the lengths cannot make ends on a cut unit, still exact', () => {
    const out = fillExactly([unit(4, 1), unit(6, 2)], 101, () => 0.5);
    assert.equal(out.reduce((n, u) => n + u.length, 0), 101);
    assert.equal(out.filter((u) => u.length !== 4 && u.length !== 6).length, 1);
  });
});
