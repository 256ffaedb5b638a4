/** The benchmarks run on any model, end to end, each run in its own process. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { kvfold } from '../test-support.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-bench-test-'));
const recall = join(root, 'recall');
after(() => rmSync(root, { recursive: true, force: true }));
before(async () => {
  const r = await kvfold(['models', 'build', 'recall', '--out', recall]);
  assert.equal(r.code, 0, r.stderr);
});

test('bench checkpoint runs on a word-level model (recall), writing a document from its own vocabulary', async () => {
  const out = join(root, 'checkpoint.json');
  const r = await kvfold(['bench', 'checkpoint', '--model', recall, '--tokens', '2k', '--chunk-size', '128', '--every', '4', '--repeats', '1', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(readFileSync(out, 'utf8'));
  assert.ok(j.segments >= 4, `segments: ${j.segments}`);
  assert.ok(j.uploadedOverFinalCache >= 1 && j.uploadedOverFinalCache < 1.05, `uploaded / final cache = ${j.uploadedOverFinalCache}`);
});

test('bench engine measures a case beside the plain loop and reports its bars', async () => {
  const out = join(root, 'engine.json');
  const r = await kvfold(['bench', 'engine', '--cases', 'recall:1k:peer', '--repeats', '1', '--chunk-size', '128', '--models-dir', join(root, 'engine-models'), '--out', out]);
  const j = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(j.results.length, 1);
  const [c] = j.results;
  assert.equal(c.kvfold.engine, 'kvfold');
  assert.equal(c.plain.engine, 'plain');
  assert.equal(c.kvfold.steps, 8);
  assert.ok(c.kvfold.copiedBytesPerStep.max > 0 && c.kvfold.ceiling.gflops > 0);
  assert.match(c.kvfold.plan, /in place: Concat attention/);
  assert.ok(j.bars.some((b: { name: string }) => b.name === 'recall 1K against the plain loop'));
  assert.equal(r.code, j.bars.every((b: { pass: boolean }) => b.pass) ? 0 : 1, r.stderr);
});

test('bench device compares a device fold with the CPU’s; on the CPU itself the difference is 0', async () => {
  const out = join(root, 'device.json');
  const r = await kvfold(['bench', 'device', '--device', 'cpu', '--cases', 'recall:1k', '--chunk-size', '128', '--models-dir', join(root, 'device-models'), '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const [row] = JSON.parse(readFileSync(out, 'utf8')).rows;
  assert.deepEqual([row.model, row.tokens, row.cpuTokens, row.maxAbsDiff, row.argmaxAgreement], ['recall', 1024, 1024, 0, 1]);
  assert.ok(row.deviceTokensPerSecond > 0 && row.cpuTokensPerSecond > 0);
});
