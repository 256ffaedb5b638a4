/**
 * One batch-settings contract: every field of the zod BatchSpec has its flags on `run` and
 * `enqueue` (and on `fold`, but for the fields it sets its own way), with the schema's defaults; and
 * `run` does what `fold` does with the same settings — int8 KV, sampling with a seed, stop strings,
 * no generation — on a real model, so no setting is parsed and then dropped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BatchSpec } from '@kvfold/contract';
import type { Command } from 'commander';
import { FOLD_OWN_FIELDS, SETTING_FLAGS, type SettingField, settingFields } from './fold-options.ts';
import { buildProgram } from './program.ts';
import { kvfold } from './test-support.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-settings-'));
const model = join(root, 'tiny');
const doc = join(root, 'doc.txt');
after(() => rmSync(root, { recursive: true, force: true }));
before(async () => {
  assert.equal((await kvfold(['models', 'build', 'tiny-llama', '--out', model])).code, 0);
  writeFileSync(doc, 'The cache is carried from chunk to chunk, and positions continue. '.repeat(10));
});

const command = (name: string): Command => {
  const c = buildProgram().commands.find((x) => x.name() === name);
  assert.ok(c, name);
  return c;
};

test('every BatchSpec field but corpus has flags, and nothing else does', () => {
  assert.deepEqual(Object.keys(SETTING_FLAGS).sort(), Object.keys(BatchSpec.shape).filter((k) => k !== 'corpus').sort());
});

test('fold, run and enqueue take the flags of their fields, with the schema’s defaults', () => {
  for (const name of ['fold', 'run', 'enqueue'] as const) {
    const options = new Map(command(name).options.map((o) => [o.long, o]));
    for (const field of settingFields(name)) {
      for (const flag of SETTING_FLAGS[field]) {
        const option = options.get(flag);
        assert.ok(option, `${name} has ${flag} (${field})`);
        const fallback = (BatchSpec.shape[field] as { safeParse(v: unknown): { success: boolean; data?: unknown } }).safeParse(undefined);
        if (SETTING_FLAGS[field].length === 1 && fallback.success && fallback.data !== undefined && typeof fallback.data !== 'boolean') {
          assert.deepEqual(option.defaultValue, fallback.data, `${name} ${flag} defaults to the schema's default`);
        }
      }
    }
    if (name === 'fold') for (const field of Object.keys(FOLD_OWN_FIELDS) as SettingField[]) for (const flag of SETTING_FLAGS[field]) assert.ok(!options.has(flag), `fold has no ${flag}`);
  }
});

interface FoldJson {
  policy: string;
  kvBytes: number;
  answers: { text: string; tokenIds: number[] }[];
}
interface ResultLine {
  status: string;
  policy?: string;
  kvBytes: number;
  answers: { text: string; tokenIds: number[] }[];
}

/** `kvfold fold` and `kvfold run` of the same document with the same settings. */
async function both(settings: string[]): Promise<{ fold: FoldJson; run: ResultLine }> {
  const common = ['--model', model, '--chunk-size', '64', '--ask', 'What is carried?', '--ask', 'What continues?', ...settings];
  const f = await kvfold(['fold', doc, ...common, '--json']);
  assert.equal(f.code, 0, f.stderr);
  const out = join(root, `results-${settings.join('_').replace(/\W+/g, '-')}.jsonl`);
  const r = await kvfold(['run', doc, ...common, '--store', join(root, 'store'), '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const [line] = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ResultLine);
  assert.ok(line);
  assert.equal(line.status, 'completed');
  return { fold: JSON.parse(f.stdout) as FoldJson, run: line };
}

const ids = (answers: { tokenIds: number[] }[]) => answers.map((a) => a.tokenIds);

for (const kv of ['f16', 'int8'] as const) {
  test(`--kv ${kv} holds the cache at that width in run as in fold, with the same answers`, async () => {
    const { fold, run } = await both(['--kv', kv, '--max-new-tokens', '6']);
    const f32 = await both(['--max-new-tokens', '6']);
    // tiny-llama's heads are 16 wide: float16 halves a row; int8 keeps a byte a value and a 4-byte scale per head row.
    assert.equal(fold.kvBytes / f32.fold.kvBytes, kv === 'f16' ? 0.5 : (16 + 4) / 64);
    assert.equal(run.kvBytes, fold.kvBytes);
    assert.deepEqual(ids(run.answers), ids(fold.answers));
  });
}

test('--kv-codec other than int8 cannot store an int8 cache: refused by name before anything runs', async () => {
  const f = await kvfold(['fold', doc, '--model', model, '--kv', 'int8', '--kv-codec', 'f32', '--checkpoint', join(root, 'ck')]);
  assert.equal(f.code, 1);
  assert.match(f.stderr, /--kv-codec f32 cannot store an int8 cache/);
  const r = await kvfold(['run', doc, '--model', model, '--store', join(root, 'refused-codec'), '--kv', 'int8', '--kv-codec', 'f16']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--kv-codec must be 'int8' \(or absent\) with kv 'int8'/);
});

test('--max-batch-size: the questions decoded together answer as one at a time, in fold and run', async () => {
  const apart = await both(['--max-batch-size', '1', '--max-new-tokens', '8']);
  const together = await both(['--max-batch-size', '8', '--max-new-tokens', '8']);
  assert.deepEqual(ids(together.fold.answers), ids(apart.fold.answers));
  assert.deepEqual(ids(together.run.answers), ids(apart.run.answers));
  assert.deepEqual(ids(together.run.answers), ids(together.fold.answers));
});

test('sampling with a seed and stop strings give run the answers fold gives', async () => {
  const a = await both(['--temperature', '4', '--seed', '1', '--max-new-tokens', '12']);
  const b = await both(['--temperature', '4', '--seed', '2', '--max-new-tokens', '12']);
  assert.deepEqual(ids(a.run.answers), ids(a.fold.answers));
  assert.deepEqual(ids(b.run.answers), ids(b.fold.answers));
  assert.notDeepEqual(ids(a.run.answers), ids(b.run.answers), 'another seed samples other answers');
  // Stop before a text the seeded answer holds: run cuts it where fold does.
  const text = a.fold.answers[0]?.text ?? '';
  const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2);
  assert.ok(stop.trim().length > 0, `answer ${JSON.stringify(text)} has text to stop at`);
  const cut = await both(['--temperature', '4', '--seed', '1', '--max-new-tokens', '12', '--stop', stop]);
  assert.deepEqual(cut.run.answers.map((x) => x.text), cut.fold.answers.map((x) => x.text));
  assert.ok((cut.run.answers[0]?.text.length ?? 0) < text.length, 'the stop string cut the answer');
});

test('--max-new-tokens 0 folds without answering, in run as in fold', async () => {
  const { fold, run } = await both(['--max-new-tokens', '0']);
  assert.deepEqual(ids(fold.answers), [[], []]);
  assert.deepEqual(ids(run.answers), [[], []]);
});

test('a setting the schema refuses is an error naming its flag, before anything runs', async () => {
  const r = await kvfold(['run', doc, '--model', model, '--store', join(root, 'refused'), '--temperature', '1', '--top-p', '1.5']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--top-p must be a number in \(0, 1\]/);
  const e = await kvfold(['enqueue', doc, '--model', model, '--top-k', '3', '--api', 'http://127.0.0.1:9']);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /--top-k sample answers: add --temperature/);
});
