/**
 * The producer's token bounds (tokens <= bytes + 3; tokens >= bytes / longest vocabulary entry;
 * tokens >= the fewest vocabulary pieces the text can be cut into) checked against real
 * tokenizers — a model-zoo model's and the byte-level and SentencePiece formats real decoders
 * ship — on texts that stress them: ASCII, Latin-1 and CJK characters, emoji, runs of spaces,
 * special-token strings inside the text. Then the floor at work: ingest refuses a document it
 * proves too long, naming its group, and a worker fails one without tokenizing it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BatchSpec, type DocumentJob, documentResultKey, foldSettingsOf } from '@kvfold/contract';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { TextTokenizer, readModelFolder } from '@kvfold/onnx';
import { DEFAULT_CORPUS, byteLevelBpe, fixtureTokenizer, sentencePieceBpe } from '@kvfold/onnx/testing';
import type { TokenizerFiles } from '@kvfold/onnx/testing';
import { TokenFloor, ingest, maxTokenBytesOf, tokenBounds, tokenBudgetFor, uploadCorpus } from '@kvfold/producer';
import { FsObjectStore } from '@kvfold/storage';
import { pino } from 'pino';
import { ModelCache } from './model-cache.ts';
import { processDocument } from './process-document.ts';

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
  // As a path, a URI, or the model reference a parsed BatchSpec holds (what the API passes).
  for (const ref of [model, `file://${model}`, { uri: model }]) {
    const budget = await tokenBudgetFor(ref, 500);
    assert.deepEqual([budget.maxTokens, budget.maxTokenBytes, budget.floor instanceof TokenFloor], [500, longest, true]);
  }
  // A URI or a folder not here gives no vocabulary, so nothing can be proven too long.
  assert.deepEqual(await tokenBudgetFor('s3://bucket/models/tiny', 500), { maxTokens: 500 });
  assert.deepEqual(await tokenBudgetFor(join(dir, 'missing'), 500), { maxTokens: 500 });
});

const FORMATS: [string, TokenizerFiles][] = [
  ['byte-level BPE', byteLevelBpe()],
  ['SentencePiece BPE (legacy normalizer)', sentencePieceBpe({ style: 'legacy' })],
  ['SentencePiece BPE (Metaspace pre-tokenizer)', sentencePieceBpe({ style: 'metaspace' })],
];

test('the vocabulary floor is at most the real count and close to it, in every format real decoders ship', async () => {
  const tiny = await readModelFolder(join(dir, 'tiny'));
  const cases: [string, TokenizerFiles][] = [...FORMATS, ['tiny-llama', { tokenizerJson: tiny.tokenizerJson, tokenizerConfig: tiny.tokenizerConfig }]];
  const prose = `${DEFAULT_CORPUS}\n`.repeat(40);
  for (const [name, files] of cases) {
    const floor = TokenFloor.of(files.tokenizerJson);
    assert.ok(floor, `${name}: a floor`);
    const tokenizer = fixtureTokenizer(files);
    for (const text of [prose, ...TEXTS.slice(0, -1), ' leading space', 'Thegrass isgreen', 'e\u0301 combining']) {
      const n = tokenizer.encode(text, { document: false }).ids.length;
      const lower = floor.lowerBound(text);
      assert.ok(lower !== undefined && lower <= n, `${name}, ${JSON.stringify(text.slice(0, 20))}: floor ${lower} <= ${n}`);
    }
    const n = tokenizer.encode(prose, { document: false }).ids.length;
    assert.ok((floor.lowerBound(prose) as number) >= 0.95 * n, `${name}: the floor of prose is within 5% of its ${n} tokens`);
    // A limit stops the reading once passed: the answer is then over the limit, and no more.
    const stopped = floor.lowerBound(prose, 100) as number;
    assert.ok(stopped > 100 && stopped <= n, `${name}: stopped at ${stopped}`);
    // Added tokens split the text apart: a text holding one literally is not one the floor bounds.
    const added = (files.tokenizerJson.added_tokens as { content: string }[])[0]?.content;
    assert.ok(added, `${name}: an added token`);
    assert.equal(floor.lowerBound(`the grass ${added} is green`), undefined);
  }
});

test('no floor where the tokenizer rewrites text in ways it does not reproduce exactly', () => {
  const base = byteLevelBpe().tokenizerJson as Record<string, unknown> & { model: Record<string, unknown> };
  const variants: [string, Record<string, unknown>][] = [
    ['fused <unk> without byte fallback', sentencePieceBpe({ byteFallback: false }).tokenizerJson],
    ['a lowercasing normalizer', { ...base, normalizer: { type: 'Lowercase' } }],
    ['a regex replace', { ...base, normalizer: { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' } }],
    ['a WordPiece model', { ...base, model: { ...base.model, type: 'WordPiece' } }],
    ['an end-of-word suffix', { ...base, model: { ...base.model, end_of_word_suffix: '</w>' } }],
  ];
  for (const [what, json] of variants) assert.equal(TokenFloor.of(json), undefined, what);
  assert.ok(TokenFloor.of(base));
});

test('ingest refuses a document the floor proves too long, by its group name, where the size bound cannot', async () => {
  const model = join(dir, 'byte-bpe');
  await mkdir(model, { recursive: true });
  await writeFile(join(model, 'tokenizer.json'), JSON.stringify(byteLevelBpe().tokenizerJson));
  const tree = join(dir, 'repo');
  await mkdir(join(tree, 'notes'), { recursive: true });
  await writeFile(join(tree, 'notes', 'a.txt'), `${DEFAULT_CORPUS}\n`.repeat(7));
  await writeFile(join(tree, 'notes', 'b.txt'), `${DEFAULT_CORPUS}\n`.repeat(6));
  await writeFile(join(tree, 'README.md'), 'The river runs past the old mill.\n');
  const budget = await tokenBudgetFor(model, 300);
  const tokenizer = fixtureTokenizer(byteLevelBpe());
  const run = ingest([tree], { grouping: 'directory', tokenBudget: budget });
  const docs: string[] = [];
  for await (const doc of run) docs.push(doc.name);
  assert.deepEqual(docs, ['repo']);
  assert.deepEqual(run.report.refused.map((r) => [r.entry, r.code]), [['repo/notes/', 'KVF_INGEST_DOCUMENT_TOO_LONG']]);
  const reason = run.report.refused[0]?.reason ?? '';
  const lower = Number(/^at least (\d+) tokens \(the fewest pieces of the model's vocabulary/.exec(reason)?.[1]);
  assert.ok(lower > 300, reason);
  // The size bound alone proves nothing here: the group is under 300 x the longest token's bytes.
  const groupBytes = (DEFAULT_CORPUS.length + 1) * 13 + 60;
  assert.ok(tokenBounds(groupBytes, { maxTokens: 300, maxTokenBytes: budget.maxTokenBytes as number }).lower <= 300);
  assert.ok(lower <= tokenizer.encode(`${DEFAULT_CORPUS}\n`.repeat(13), { document: false }).ids.length);
});

test('a worker fails a document the floor proves too long before tokenizing it; one it cannot prove is counted', async () => {
  const model = join(dir, 'tiny');
  const models = new ModelCache({ cacheDir: join(dir, 'cache') });
  try {
    const store = new FsObjectStore(join(dir, 'worker-store'));
    const file = join(dir, 'long.txt');
    await writeFile(file, 'x'.repeat(1000));
    // Ingested without the model's budget, as when only the workers can read the model.
    const corpus = await uploadCorpus(store, ingest([file]));
    const [d] = corpus.index.documents;
    assert.ok(d);
    const jobFor = (maxTokensPerDocument: number): DocumentJob => {
      const spec = BatchSpec.parse({ model, queries: [], chunkSize: 64, maxTokensPerDocument, corpus: [corpus.indexKey] });
      const batchId = `b${createHash('sha256').update(String(maxTokensPerDocument)).digest('hex').slice(0, 32)}`;
      return { batchId, docId: d.docId, corpusId: corpus.corpusId, shard: d.shard, paths: d.paths, bytes: d.bytes, fold: foldSettingsOf(spec) };
    };
    const failedWith = async (job: DocumentJob) => {
      const outcome = await processDocument(job, { store, models, log: pino({ level: 'silent' }) }, { attempt: 1, writerId: 'test' });
      assert.equal(outcome.kind, 'failed');
      const stored = JSON.parse(new TextDecoder().decode(await store.getBytes(documentResultKey(job.batchId, job.docId))));
      assert.equal(stored.error.code, 'KVF_DOC_TOO_LONG');
      return stored.error.message as string;
    };
    // tiny-llama's vocabulary is its bytes: 1,000 bytes are at least 1,000 tokens.
    assert.match(await failedWith(jobFor(500)), /^document long\.txt has at least 1000 tokens \(the fewest pieces of the model's vocabulary/);
    // At a limit of 1,000 the floor proves nothing; the tokenizer's count (with BOS) is over it.
    assert.match(await failedWith(jobFor(1000)), /^document long\.txt has 100\d tokens, over the batch's limit of 1000/);
  } finally {
    await models.close();
  }
});

test('a normalizer that may shrink text gives no size bound but keeps the floor; a changed tokenizer.json is read again', async () => {
  const model = join(dir, 'nfc-bpe');
  await mkdir(model, { recursive: true });
  // Qwen2's pipeline: NFC, which composes `e` + U+0301 (3 bytes) into `é` (2).
  const nfc = { ...byteLevelBpe().tokenizerJson, normalizer: { type: 'NFC' } };
  await writeFile(join(model, 'tokenizer.json'), JSON.stringify(nfc));
  assert.equal(await maxTokenBytesOf(model), undefined);
  const first = await tokenBudgetFor(model, 500);
  assert.equal(first.maxTokenBytes, undefined);
  assert.ok(first.floor instanceof TokenFloor);
  assert.ok((first.floor.lowerBound('e\u0301'.repeat(10)) as number) <= fixtureTokenizer({ tokenizerJson: nfc, tokenizerConfig: {} }).encode('e\u0301'.repeat(10), { document: false }).ids.length);
  // The same folder with another vocabulary (a longer piece): the budget follows the file.
  const longer = byteLevelBpe({ corpus: `${DEFAULT_CORPUS} extraordinarily` }).tokenizerJson;
  await writeFile(join(model, 'tokenizer.json'), JSON.stringify(longer));
  const second = await tokenBudgetFor(model, 500);
  assert.equal(second.floor?.longestPiece, TokenFloor.of(longer)?.longestPiece);
  assert.notEqual(second.floor?.longestPiece, first.floor.longestPiece);
});
