/** `kvfold` as a user runs it: real processes, real model folders, real exit codes. */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { kvfold as run } from './test-support.ts';

const kvfold = (args: string[], stdin?: string) => run(args, stdin === undefined ? {} : { stdin });

const root = mkdtempSync(join(tmpdir(), 'kvfold-cli-test-'));
const model = join(root, 'tiny');
after(() => rmSync(root, { recursive: true, force: true }));

before(async () => {
  const r = await kvfold(['models', 'build', 'tiny-llama', '--out', model, '--json']);
  assert.equal(r.code, 0, r.stderr);
});

test('fold --json prints the documented object', async () => {
  const doc = join(root, 'doc.txt');
  const text = 'The fold carries the KV cache from chunk to chunk. '.repeat(4);
  writeFileSync(doc, text);
  const r = await kvfold(['fold', doc, '--model', model, '--chunk-size', '32', '--ask', 'What is carried?', '--ask', 'x', '--max-new-tokens', '5', '--nll', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const tokens = 1 + Buffer.byteLength(text); // BOS + one token per byte
  assert.match(out.model, /^sha256:[0-9a-f]{64}$/);
  assert.equal(out.tokens, tokens);
  assert.equal(out.chunkSize, 32);
  assert.equal(out.steps, Math.ceil(tokens / 32));
  assert.equal(out.kvLength, tokens);
  assert.equal(out.kvBytes, tokens * 2 * 2 * 2 * 16 * 4);
  for (const k of ['loadMs', 'tokenizeMs', 'foldMs', 'generateMs', 'totalMs', 'tokensPerSecond']) assert.equal(typeof out.timings[k], 'number', k);
  assert.ok(out.timings.tokensPerSecond > 0);
  assert.equal(out.answers.length, 2);
  assert.equal(out.answers[0].query, 'What is carried?');
  assert.equal(out.answers[0].tokenIds.length, 5);
  assert.equal(typeof out.answers[0].text, 'string');
  assert.equal(out.nll.length, out.steps);
  assert.deepEqual(out.nll[1], { ...out.nll[1], step: 2, start: 32, end: 64, tokens: 32 });
  assert.ok(out.nll.every((c: { nll: number }) => Number.isFinite(c.nll) && c.nll > 0));
});

test('fold --nll --chunk-size 1 reports a number for every chunk with a token to score, and no entry for the first', async () => {
  const r = await kvfold(['fold', '-', '--model', model, '--chunk-size', '1', '--nll', '--json'], 'abc');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.steps, 4); // BOS + 3 bytes
  assert.deepEqual(
    out.nll.map((c: { step: number; tokens: number }) => [c.step, c.tokens]),
    [
      [2, 1],
      [3, 1],
      [4, 1],
    ],
  );
  assert.ok(out.nll.every((c: { nll: unknown }) => typeof c.nll === 'number'));
});

test('fold samples with --temperature: one seed gives one answer, another seed another; --top-k 1 is greedy; --stop cuts the answer', async () => {
  const doc = join(root, 'sample.txt');
  writeFileSync(doc, 'Sampling draws each answer token from the softmax of its logits. '.repeat(3));
  const ask = (...extra: string[]) => kvfold(['fold', doc, '--model', model, '--chunk-size', '64', '--ask', 'one', '--ask', 'two', '--max-new-tokens', '12', '--json', ...extra]);
  const answers = async (...extra: string[]) => {
    const r = await ask(...extra);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).answers as { text: string; tokenIds: number[]; stopReason: string }[];
  };
  const a = await answers('--temperature', '1.5', '--seed', '5');
  assert.deepEqual(await answers('--temperature', '1.5', '--seed', '5'), a);
  assert.notDeepEqual((await answers('--temperature', '1.5', '--seed', '6')).map((x) => x.tokenIds), a.map((x) => x.tokenIds));
  const greedy = await answers();
  assert.notDeepEqual(a.map((x) => x.tokenIds), greedy.map((x) => x.tokenIds), 'sampling is not greedy');
  assert.deepEqual((await answers('--temperature', '1.5', '--top-k', '1', '--seed', '9')).map((x) => x.tokenIds), greedy.map((x) => x.tokenIds));
  // A stop string taken from the greedy answer ends it there.
  const text = greedy[0]?.text as string;
  const stop = text.slice(3, 5);
  const cut = await answers('--stop', stop);
  assert.equal(cut[0]?.stopReason, 'stop-string');
  assert.equal(cut[0]?.text, text.slice(0, text.indexOf(stop)));
  const bad = await ask('--top-k', '3');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--top-k sample answers: add --temperature T \(> 0\)/);
  const zero = await ask('--temperature', '0');
  assert.equal(zero.code, 1);
  assert.match(zero.stderr, /--temperature must be a number > 0, got 0/);
});

test('fold reads standard input with -', async () => {
  const r = await kvfold(['fold', '-', '--model', model, '--chunk-size', '8', '--json'], 'from a pipe');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).tokens, 12);
});

test('empty input is refused by name', async () => {
  const empty = join(root, 'empty.txt');
  writeFileSync(empty, '  \n');
  const r = await kvfold(['fold', empty, '--model', model]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /input .*empty.txt is empty: there is nothing to fold/);
});

test('a chunk size below 1 is refused', async () => {
  const r = await kvfold(['fold', '-', '--model', model, '--chunk-size', '0'], 'abc');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--chunk-size must be an integer >= 1, got "0"/);
});

test('a missing model folder is refused with the path and a way out, without a stack trace', async () => {
  const r = await kvfold(['fold', '-', '--model', join(root, 'nope')], 'abc');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /model folder .*nope does not exist .*kvfold models build/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
});

test('input longer than the model was trained for is refused unless asked for', async () => {
  const long = join(root, 'long.txt');
  writeFileSync(long, 'a'.repeat(131072));
  const r = await kvfold(['fold', long, '--model', model, '--ask', 'q']);
  assert.equal(r.code, 1);
  // 131073 document tokens (BOS + 131072 bytes) + 1 question token + 31 answer tokens fed back:
  // the vocabulary proves it over the 131040 positions left before the tokenizer runs.
  assert.match(r.stderr, /the document has at least 131072 tokens .* more than the 131040 that the model's 131072 positions .* leave .*--beyond-max-positions .*\[KVF_DOC_TOO_LONG\]/);
});

test('the position check counts every fed token but the last generated one', async () => {
  // 4 document tokens (BOS + "abc") + 1 question token + 131067 answer tokens fed back = one past 131072.
  const over = await kvfold(['fold', '-', '--model', model, '--ask', 'q', '--max-new-tokens', '131069'], 'abc');
  assert.equal(over.code, 1);
  assert.match(over.stderr, /the document needs 131073 positions \(4 document tokens \+ 131069 for the longest question and its answer\) but the model was trained for 131072/);
  const noAnswer = await kvfold(['fold', '-', '--model', model, '--ask', 'q', '--max-new-tokens', '0', '--json'], 'abc');
  assert.equal(noAnswer.code, 0, noAnswer.stderr);
});

test('--chat with a model that has no chat template says to drop --chat', async () => {
  const plain = join(root, 'no-chat');
  cpSync(model, plain, { recursive: true });
  const config = JSON.parse(readFileSync(join(plain, 'tokenizer_config.json'), 'utf8'));
  delete config.chat_template;
  writeFileSync(join(plain, 'tokenizer_config.json'), JSON.stringify(config));
  const r = await kvfold(['fold', '-', '--model', plain, '--ask', 'q', '--chat'], 'abc');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /model .*no-chat has no chat template .*; drop --chat to ask questions as plain text/);
  assert.doesNotMatch(r.stderr, /MALFORMED|malformed/);
});

test('text the vocabulary cannot encode is a warning with counts, on stderr and in --json', async () => {
  const recall = join(root, 'recall');
  assert.equal((await kvfold(['models', 'build', 'recall', '--out', recall])).code, 0);
  const r = await kvfold(['fold', '-', '--model', recall, '--chunk-size', '4', '--ask', 'KEY hello there', '--max-new-tokens', '1', '--json'], 'f1 hello f2 KEY n1');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.warnings, [
    `the document: 1 <unk> token; the tokenizer of ${recall} cannot encode part of the text, so the model reads it as unknown`,
    `question "KEY hello there": 2 <unk> tokens; the tokenizer of ${recall} cannot encode part of the text, so the model reads it as unknown`,
  ]);
  assert.match(r.stderr, /kvfold: warning: the document: 1 <unk> token/);
});

test('an unknown model name lists the known ones', async () => {
  const r = await kvfold(['models', 'build', 'gpt-9', '--out', join(root, 'x')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown model "gpt-9": choose one of tiny-llama/);
});

test('models build writes only to a new folder or one it wrote: a folder of yours, a file, the working folder and its parents are refused, and nothing of yours is touched', async () => {
  const mine = join(root, 'my-notes');
  mkdirSync(mine);
  writeFileSync(join(mine, 'todo.txt'), 'mine\n');
  const refused = await kvfold(['models', 'build', 'tiny-llama', '--out', mine]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /--out \S*my-notes holds 1 entry \(todo\.txt\) that kvfold did not write: choose a new folder \(or pass --force to replace it\)/);
  assert.equal(readFileSync(join(mine, 'todo.txt'), 'utf8'), 'mine\n');
  const file = join(mine, 'todo.txt');
  assert.match((await kvfold(['models', 'build', 'tiny-llama', '--out', file])).stderr, /is a file, not a folder kvfold wrote/);
  for (const out of ['.', '..', '/']) {
    const r = await run(['models', 'build', 'tiny-llama', '--out', out], { cwd: mine });
    assert.equal(r.code, 1, out);
    assert.match(r.stderr, /is the working folder, or a folder holding it/, out);
    const forced = await run(['models', 'build', 'tiny-llama', '--out', out, '--force'], { cwd: mine });
    assert.equal(forced.code, 1, `${out} --force`);
  }
  assert.deepEqual(readdirSync(mine), ['todo.txt']);
  // A folder kvfold wrote is replaced; --force replaces a folder of yours.
  const built = join(root, 'rebuilt');
  assert.equal((await kvfold(['models', 'build', 'tiny-llama', '--out', built])).code, 0);
  assert.equal((await kvfold(['models', 'build', 'recall', '--out', built])).code, 0);
  assert.match(readFileSync(join(built, 'README.md'), 'utf8'), /^# recall/);
  assert.equal((await kvfold(['models', 'build', 'recall', '--out', mine, '--force'])).code, 0);
  assert.ok(!readdirSync(mine).includes('todo.txt'));
  // A file given as --model is not offered as a place to build over.
  writeFileSync(join(root, 'guard-doc.txt'), 'a short document\n');
  const asModel = await kvfold(['fold', join(root, 'guard-doc.txt'), '--model', join(built, 'README.md')]);
  assert.equal(asModel.code, 1);
  assert.match(asModel.stderr, /is a file, not a model folder/);
  assert.doesNotMatch(asModel.stderr, /--out \S*README\.md/);
});
