/**
 * The producer's token bounds (tokens <= bytes + 3; tokens >= bytes / longest vocabulary entry)
 * checked against the real tokenizer of a model-zoo model on texts that stress them: ASCII,
 * Latin-1 and CJK characters, emoji, runs of spaces, special-token strings inside the text.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { TextTokenizer, readModelFolder } from '@kvfold/onnx';
import { maxTokenBytesOf, tokenBounds, tokenBudgetFor } from '@kvfold/producer';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kvfold-token-bounds-'));
  await writeModelFolder(tinyLlamaSpec(), join(dir, 'tiny'));
});
after(() => rm(dir, { recursive: true, force: true }));

const TEXTS = [
  'export const answer = 42;\n'.repeat(50),
  'café au lait, naïve façade, Ærøskøbing\n'.repeat(20),
  '折叠键值缓存，长文档。\n'.repeat(30),
  '🙂🚀 emoji and 🧪 tests\n'.repeat(10),
  `${' '.repeat(500)}x\n`,
  'text with <|begin_of_text|> and <|end_of_text|> inside\n',
];

test("a model-zoo tokenizer's counts lie between the producer's bounds from bytes", async () => {
  const model = join(dir, 'tiny');
  const longest = await maxTokenBytesOf(model);
  assert.ok(longest !== undefined && longest > 1, `longest vocabulary entry: ${longest}`);
  const tokenizer = new TextTokenizer(await readModelFolder(model));
  for (const text of TEXTS) {
    const bytes = Buffer.byteLength(text, 'utf8');
    const n = tokenizer.encodeDocument(text).length;
    const { lower, upper } = tokenBounds(bytes, { maxTokens: 1, maxTokenBytes: longest });
    assert.ok(lower <= n && n <= upper, `${JSON.stringify(text.slice(0, 20))}: ${lower} <= ${n} <= ${upper}`);
  }
  assert.deepEqual(await tokenBudgetFor(model, 500), { maxTokens: 500, maxTokenBytes: longest });
  assert.deepEqual(await tokenBudgetFor(`file://${model}`, 500), { maxTokens: 500, maxTokenBytes: longest });
  // A URI or a folder not here gives no vocabulary, so nothing can be proven too long.
  assert.deepEqual(await tokenBudgetFor('s3://bucket/models/tiny', 500), { maxTokens: 500 });
  assert.deepEqual(await tokenBudgetFor(join(dir, 'missing'), 500), { maxTokens: 500 });
});
