/**
 * The precision benchmark's parts on small real folders: the shapes count what the real models
 * count, the fidelity comparison finds no difference between a folder and itself and finds one
 * under int8, a run measures what it says, and the bars are decided on the numbers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { measureFidelity, measurePrecisionRun, type PrecisionRun } from './measure-precision.ts';
import { checkPrecisionBars, type PrecisionRow } from './precision-bench.ts';
import { PRECISION_SHAPES, parameterCount } from './shapes.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-precision-test-'));
const f32 = join(root, 'f32');
const int8 = join(root, 'int8');
before(async () => {
  await writeModelFolder(tinyLlamaSpec({ untied: true }), f32);
  await writeModelFolder(tinyLlamaSpec({ untied: true }), int8, { weightDtype: 'int8' });
});
after(() => rmSync(root, { recursive: true, force: true }));

test("the 8b shape has Llama-3.1-8B's 8,030,261,248 parameters, the 1b shape Llama-3.2-1B's untied count", () => {
  assert.equal(parameterCount(PRECISION_SHAPES['8b']), 8_030_261_248);
  assert.equal(parameterCount(PRECISION_SHAPES['1b']), 1_498_482_688);
});

test('fidelity: a folder beside itself is identical; int8 beside float32 is not, and says by how much', async () => {
  const options = { tokens: 96, continuation: 16, chunkSize: 32, threads: 1 };
  const same = await measureFidelity({ referenceDir: f32, modelDir: f32, ...options });
  assert.deepEqual([same.positions, same.maxAbsLogit, same.greedyAgreement], [112, 0, 1]);
  assert.equal(same.nll, same.referenceNll);
  const q = await measureFidelity({ referenceDir: f32, modelDir: int8, ...options });
  assert.ok(q.maxAbsLogit > 0 && q.maxAbsLogit < 2, `max |dlogit| ${q.maxAbsLogit}`);
  assert.ok(q.greedyAgreement < 1 && q.greedyAgreement > 0.5, `greedy agreement ${q.greedyAgreement}`);
  assert.equal(q.referenceNll, same.referenceNll, 'the reference scores the same continuation');
  assert.notEqual(q.nll, q.referenceNll);
});

test('a run folds, decodes every token asked for, and names the weights', async () => {
  const r = await measurePrecisionRun({ modelDir: int8, tokens: 300, chunkSize: 64, decode: 8, threads: 1 });
  assert.equal(r.weights, 'int8 (MatMulNBits, 32 a scale)');
  assert.ok(r.prefillTokensPerSecond > 0 && r.decodeTokensPerSecond > 0);
  assert.ok(r.peakRssMiB >= r.loadedRssMiB);
  // The folded document's rows (generation rewinds its own), each 2 layers x 2 KV heads x 16 x K,V x 4 bytes.
  assert.equal(r.kvMiB * 2 ** 20, 300 * 2 * 2 * 16 * 2 * 4);
});

const run = (peakRssMiB: number): PrecisionRun => ({ weights: '', loadMs: 0, loadedRssMiB: 0, prefillTokensPerSecond: 1, decodeTokensPerSecond: 1, peakRssMiB, kvMiB: 0 });
const row = (dtype: PrecisionRow['dtype'], folderBytes: number, peak: number): PrecisionRow => ({ dtype, folderBytes, importMs: null, run: run(peak), fidelity: null });

test('bars: the 123m folder and fold ratios, the 8b fold under 7 GiB', () => {
  const pass = (rows: PrecisionRow[], shape: '123m' | '8b') => checkPrecisionBars(shape, rows).map((b) => b.pass);
  assert.deepEqual(pass([row('f32', 100, 1000), row('int4', 30, 500)], '123m'), [true, true]);
  assert.deepEqual(pass([row('f32', 100, 1000), row('int4', 31, 501)], '123m'), [false, false]);
  assert.deepEqual(pass([row('int4', 1, 7 * 1024)], '8b'), [true]);
  assert.deepEqual(pass([row('int4', 1, 7 * 1024 + 1)], '8b'), [false]);
  assert.deepEqual(pass([row('int4', 1, 1)], '123m'), [], 'without f32 the 123m bars cannot be decided');
});
