/** `kvfold demo` (what `pnpm demo` runs) as a user runs it, on a shorter document: a real process, the real recall model, a real filesystem store. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DemoOutcome } from './demo.ts';
import { kvfold } from '../test-support.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kvfold-demo-'));
});
after(() => rm(dir, { recursive: true, force: true }));


test('kvfold demo folds a document with one needle, asks for it and gets it back exactly; rerun, it folds nothing', async () => {
  const args = ['demo', '--tokens', '3000', '--chunk-size', '256', '--dir', dir, '--json'];
  const first = await kvfold(args);
  assert.equal(first.code, 0, first.stderr);
  const o = JSON.parse(first.stdout) as DemoOutcome;
  // The needle as the document holds it: the words after its only KEY, up to the next filler word.
  const words = (await readFile(join(dir, 'demo', 'haystack-3000.txt'), 'utf8')).trim().split(' ');
  assert.equal(words.filter((w) => w === 'KEY').length, 1);
  const at = words.indexOf('KEY');
  const needle = words.slice(at + 1, words.findIndex((w, i) => i > at && w.startsWith('f'))).join(' ');
  assert.equal(needle.split(' ').length, 8);
  assert.equal(o.question, 'KEY');
  assert.equal(o.answer, needle);
  assert.equal(o.expected, needle);
  assert.equal(o.exact, true);
  assert.equal(o.tokens, 3000);
  assert.equal(o.steps, Math.ceil(3000 / 256));
  assert.ok(o.peakRssBytes > 0);
  assert.equal(o.foldedNow, true);
  const line = JSON.parse((await readFile(join(dir, 'results.jsonl'), 'utf8')).trim()) as { answers: { text: string }[] };
  assert.equal(line.answers[0]?.text, needle);

  const again = await kvfold(args);
  assert.equal(again.code, 0, again.stderr);
  const o2 = JSON.parse(again.stdout) as DemoOutcome;
  assert.equal(o2.foldedNow, false);
  assert.equal(o2.answer, needle);
});

test('kvfold demo prints what was asked, what came back, tokens, steps and peak memory', async () => {
  const r = await kvfold(['demo', '--tokens', '600', '--chunk-size', '128', '--dir', join(dir, 'text')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^document {2}.*haystack-600\.txt: 600 tokens of filler words, one needle "KEY( n[0-9]+){8}" 30% of the way in$/m);
  assert.match(r.stdout, /^asked {5}KEY$/m);
  const answered = /^answered {2}((?:n[0-9]+ ?){8})$/m.exec(r.stdout)?.[1];
  assert.ok(answered, r.stdout);
  assert.match(r.stdout, new RegExp(`^expected  ${answered}  \\(exact match\\)$`, 'm'));
  assert.match(r.stdout, /^folded {4}600 tokens in 5 steps of 128 in [0-9.]+ s/m);
  assert.match(r.stdout, /^memory {4}peak RSS [0-9.]+ GiB this run; KV cache [0-9]+ MiB/m);
});
