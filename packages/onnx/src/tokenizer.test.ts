/**
 * TextTokenizer over tokenizer.json files the tests build (a byte-level BPE and SentencePiece-style
 * BPEs, loaded by @huggingface/tokenizers): BOS/EOS as transformers applies add_bos_token /
 * add_eos_token with the post-processor, `<unk>` counted and named, the chat-template refusal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ModelError } from './errors.ts';
import { byteLevelBpe, fixtureTokenizer, sentencePieceBpe } from './test-tokenizers.ts';
import { unknownWarning } from './tokenizer.ts';

const pieces = (t: ReturnType<typeof fixtureTokenizer>, ids: Int32Array) => [...ids].map((i) => t.idToToken(i));

test('a SentencePiece-style document gets one BOS and ▁-marked words; a continuation gets no BOS', () => {
  const t = fixtureTokenizer(sentencePieceBpe());
  assert.deepEqual(pieces(t, t.encodeDocument('The grass is green.')), ['<s>', '▁The', '▁grass', '▁is', '▁green', '.']);
  assert.deepEqual(pieces(t, t.encodeContinuation('The grass is green.')), ['▁The', '▁grass', '▁is', '▁green', '.']);
  assert.deepEqual(pieces(t, t.encodeDocument('x\ny')), ['<s>', '▁', 'x', '<0x0A>', 'y'], 'bytes stand in for a newline');
});

test('add_bos_token in tokenizer_config.json adds BOS where the post-processor adds none, as transformers does', () => {
  const t = fixtureTokenizer(sentencePieceBpe({ postProcessor: 'none' }));
  assert.deepEqual(pieces(t, t.encodeDocument('The sky')), ['<s>', '▁The', '▁sky']);
  // A Llama-class tokenizer with no flags at all: transformers' default is BOS on, EOS off.
  const bare = fixtureTokenizer(sentencePieceBpe({ postProcessor: 'none', config: { add_bos_token: undefined, add_eos_token: undefined } }));
  assert.deepEqual(pieces(bare, bare.encodeDocument('The sky')), ['<s>', '▁The', '▁sky']);
});

test('add_bos_token false and add_eos_token true override the post-processor', () => {
  const noBos = fixtureTokenizer(sentencePieceBpe({ config: { add_bos_token: false } }));
  assert.deepEqual(pieces(noBos, noBos.encodeDocument('The sky')), ['▁The', '▁sky']);
  const eos = fixtureTokenizer(sentencePieceBpe({ config: { add_eos_token: true } }));
  assert.deepEqual(pieces(eos, eos.encodeDocument('The sky')), ['<s>', '▁The', '▁sky', '</s>']);
  assert.deepEqual(pieces(eos, eos.encodeContinuation('The sky')), ['▁The', '▁sky'], 'a continuation never gets them');
});

test('a byte-level tokenizer follows its post-processor unless tokenizer_config.json sets a flag', () => {
  const plain = fixtureTokenizer(byteLevelBpe());
  assert.deepEqual(pieces(plain, plain.encodeDocument('The sky')), ['<|begin_of_text|>', 'The', 'Ġsky']);
  const none = fixtureTokenizer(byteLevelBpe({ postProcessor: 'none' }));
  assert.deepEqual(pieces(none, none.encodeDocument('The sky')), ['The', 'Ġsky']);
  const flagged = fixtureTokenizer(byteLevelBpe({ postProcessor: 'none', config: { add_bos_token: true } }));
  assert.deepEqual(pieces(flagged, flagged.encodeDocument('The sky')), ['<|begin_of_text|>', 'The', 'Ġsky']);
  const off = fixtureTokenizer(byteLevelBpe({ config: { add_eos_token: false } }));
  assert.deepEqual(pieces(off, off.encodeDocument('The sky')), ['The', 'Ġsky'], 'a flag set makes the flags decide (the other defaults to off)');
});

test('a flag naming a token that is not in the vocabulary is refused, naming the file and the token', () => {
  assert.throws(
    () => fixtureTokenizer(sentencePieceBpe({ config: { bos_token: '<bos>' } })),
    (e: ModelError) => e.code === 'KVF_MODEL_MALFORMED' && /tokenizer_config\.json adds bos_token "<bos>", which is not a token of tokenizer\.json/.test(e.message),
  );
});

test('characters the vocabulary cannot encode are counted as <unk>, with the characters named', () => {
  const t = fixtureTokenizer(sentencePieceBpe({ byteFallback: false }));
  const text = 'The snow ☃☃ is é. The sky ☃';
  const doc = t.encode(text, { document: true });
  const unk = t.tokenToId('<unk>');
  assert.equal(doc.ids.filter((id) => id === unk).length, 3, '☃☃ fuse into one <unk>');
  assert.deepEqual(doc.unknown, { tokens: 3, characters: 4, distinct: 2, examples: [{ char: '☃', count: 3 }, { char: 'é', count: 1 }] });
  assert.equal(
    unknownWarning('the document', doc.unknown!, '/m'),
    'the document: 4 characters (2 distinct: "☃" x3, "é" x1) became 3 <unk> tokens; the tokenizer of /m cannot encode them, so the model reads them as unknown',
  );
  assert.equal(t.encode('The sky is blue.', { document: true }).unknown, null);
  const fallback = fixtureTokenizer(sentencePieceBpe());
  assert.equal(fallback.encode(text, { document: true }).unknown, null, 'byte fallback encodes every character');
  assert.equal(fixtureTokenizer(byteLevelBpe()).encode(text, { document: false }).unknown, null, 'a byte-level BPE has no <unk>');
});

test('no ids decode to the empty string', () => {
  assert.equal(fixtureTokenizer(sentencePieceBpe()).decode([]), '');
});

test('a chat asked of a tokenizer without a chat template says to drop --chat', () => {
  const t = fixtureTokenizer(sentencePieceBpe(), '/models/plain');
  assert.equal(t.hasChatTemplate, false);
  assert.throws(
    () => t.encodeChat([{ role: 'user', content: 'hi' }], { continuing: true }),
    (e: ModelError) => e.code === 'KVF_MODEL_NO_CHAT_TEMPLATE' && /model \/models\/plain has no chat template .*; drop --chat/.test(e.message),
  );
});
