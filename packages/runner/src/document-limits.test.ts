/**
 * The one length rule of fold, run and the worker, with no model: a full-policy document leaves
 * room for its longest question and every answer token but the last; streaming needs no room; the
 * cache reserves the rows of every question decoded together.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fullPolicy } from '@kvfold/fold-core';
import { cacheRows, checkLength, documentLimits } from './document-limits.ts';

const full = { maxNewTokens: 32, questionTokens: [5, 9], positionsGrow: true };

test('the longest question and its answer, less the last token, are what a full fold leaves room for', () => {
  const limits = documentLimits(1000, full);
  assert.equal(limits.answerRows, 9 + 32 - 1);
  assert.equal(limits.maxTokens, 1000 - 40);
  assert.equal(limits.boundBy, 'positions');
  assert.deepEqual(checkLength(960, limits, full, 'doc'), []);
  assert.throws(() => checkLength(961, limits, full, 'doc'), {
    code: 'KVF_DOC_TOO_LONG',
    message: /^doc needs 1001 positions \(961 document tokens \+ 40 for the longest question and its answer\) but the model was trained for 1000/,
  });
  assert.equal(cacheRows(fullPolicy, 960, 64, { ...full, together: 1 }), 1000);
});

test('questions answered together reserve the rows of the longest of them, all at once', () => {
  const answers = { maxNewTokens: 32, questionTokens: [5, 9, 7] };
  assert.equal(cacheRows(fullPolicy, 960, 64, { ...answers, together: 2 }), 960 + 40 + 38);
  assert.equal(cacheRows(fullPolicy, 960, 64, { ...answers, together: 8 }), 960 + 40 + 38 + 36);
  assert.equal(cacheRows(fullPolicy, 960, 64, { ...answers, questionTokens: [], together: 8 }), 960);
  // Positions do not add up: every question of the batch starts where the document ends.
  assert.equal(documentLimits(1000, { ...answers, positionsGrow: true }).answerRows, 40);
});

test('no answer tokens: the question alone counts; no questions: nothing', () => {
  assert.equal(documentLimits(1000, { ...full, maxNewTokens: 0 }).answerRows, 0);
  assert.equal(documentLimits(1000, { ...full, maxNewTokens: 1 }).answerRows, 9);
  assert.equal(documentLimits(1000, { ...full, questionTokens: [] }).answerRows, 0);
});

test("the batch's limit binds when it is the smaller, and is named", () => {
  const settings = { ...full, maxTokensPerDocument: 500 };
  const limits = documentLimits(1000, settings);
  assert.deepEqual([limits.maxTokens, limits.boundBy], [500, 'batch']);
  assert.throws(() => checkLength(501, limits, settings, 'doc'), { code: 'KVF_DOC_TOO_LONG', message: /over the batch's limit of 500 \(maxTokensPerDocument\)/ });
});

test('past the positions is a warning when allowed, and streaming grows no positions', () => {
  const beyond = { ...full, beyondMaxPositions: true };
  const limits = documentLimits(1000, beyond);
  assert.equal(limits.boundBy, 'none');
  assert.match(checkLength(2000, limits, beyond, 'doc').join(), /doc needs 2040 positions .* positions beyond it are extrapolated/);
  const streaming = { ...full, positionsGrow: false };
  assert.deepEqual(checkLength(10_000, documentLimits(1000, streaming), streaming, 'doc'), []);
});

test('an empty document is refused', () => {
  assert.throws(() => checkLength(0, documentLimits(1000, full), full, 'doc'), { code: 'KVF_DOC_EMPTY' });
});
