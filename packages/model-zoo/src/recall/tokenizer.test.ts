/** The recall tokenizer loads in @huggingface/tokenizers and maps one word to one token, both ways. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { BOS_ID, EOS_ID, FIRST_NEEDLE_ID, KEY_ID, UNK_ID, recallLayout, recallSpec, recallTrial, recallVocabulary } from './index.ts';

const spec = recallSpec();
const layout = recallLayout();
const tokenizer = new Tokenizer(spec.tokenizer, spec.tokenizerConfig);

test('every vocabulary word is one token with its own id', () => {
  const words = recallVocabulary(layout);
  assert.equal(words.length, spec.config.vocab_size);
  assert.equal(new Set(words).size, words.length);
  words.forEach((word, id) => {
    assert.equal(tokenizer.token_to_id(word), id, word);
    assert.equal(tokenizer.id_to_token(id), word);
  });
  assert.deepEqual([words[UNK_ID], words[BOS_ID], words[EOS_ID], words[KEY_ID], words[FIRST_NEEDLE_ID]], ['<unk>', '<s>', '</s>', 'KEY', 'n0']);
  assert.equal(words[layout.firstFillerId], 'f0');
});

test('encoding prepends <s>, splits on any whitespace, and maps unknown words to <unk>', () => {
  const f = (i: number) => layout.firstFillerId + i;
  assert.deepEqual(tokenizer.encode('f3 KEY n7 n8\n f999\tKEY').ids, [BOS_ID, f(3), KEY_ID, FIRST_NEEDLE_ID + 7, FIRST_NEEDLE_ID + 8, f(999), KEY_ID]);
  assert.deepEqual(tokenizer.encode('f3 KEY', { add_special_tokens: false }).ids, [f(3), KEY_ID]);
  assert.deepEqual(tokenizer.encode('f1 hello f2').ids, [BOS_ID, f(1), UNK_ID, f(2)]);
});

test("a trial's text round-trips through encode and decode", () => {
  const trial = recallTrial(layout, { length: 400, needle: [4, 44, 84], depth: 0.3, seed: 11 });
  const encoded = tokenizer.encode(trial.text, { add_special_tokens: false }).ids;
  assert.deepEqual(encoded, trial.ids);
  assert.equal(tokenizer.decode(encoded), trial.text);
  const withoutBos = trial.text.slice('<s> '.length);
  assert.deepEqual(tokenizer.encode(withoutBos).ids, trial.ids, 'encode adds the <s> the trial starts with');
  assert.equal(tokenizer.decode(trial.ids, { skip_special_tokens: true }), withoutBos);
  assert.equal(tokenizer.decode([...trial.answer, EOS_ID], { skip_special_tokens: true }), 'n4 n44 n84');
});
