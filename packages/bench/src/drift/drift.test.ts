/**
 * Drift on real models: at float32 the folded logits agree with one single pass to float
 * precision on tiny-llama and the recall model; int8 KV drifts measurably; a reference that does
 * not fit its memory bound covers the longest prefix that does; the table and plot hold the numbers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { recallSpec, tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { type LoadedModel, loadModel } from '@kvfold/onnx';
import { NiahError } from '../niah/errors.ts';
import { niahModel } from '../niah/run-niah.ts';
import { checkSvg } from '../niah/svg-check.ts';
import { driftDocument, modelDims } from './document.ts';
import { compareRows, measureDrift, singlePassBytes } from './drift.ts';
import { writeDrift } from './report.ts';

/** Float32 agreement the fold must keep (the paper's bf16 plateau is orders above it). */
const MAX_ABS_F32 = 1e-4;
const MAX_KL_F32 = 1e-6;

const root = mkdtempSync(join(tmpdir(), 'kvfold-drift-test-'));
let tiny: LoadedModel;
let recall: LoadedModel;
before(async () => {
  await writeModelFolder(tinyLlamaSpec(), join(root, 'tiny'));
  await writeModelFolder(recallSpec(), join(root, 'recall'));
  [tiny, recall] = await Promise.all([loadModel(join(root, 'tiny')), loadModel(join(root, 'recall'))]);
});
after(async () => {
  await Promise.all([tiny?.close(), recall?.close()]);
  rmSync(root, { recursive: true, force: true });
});

const drift = (m: LoadedModel, length: number, chunkSize: number, extra: { kv?: 'f32' | 'f16' | 'int8'; referenceLimitMiB?: number } = {}) =>
  measureDrift({ model: m.decoder, dims: modelDims(m), tokens: driftDocument(niahModel(m), length), chunkSize, ...extra });

test('tiny-llama, f32: every step within 1e-4 max-abs and KL < 1e-6 of the single pass', async () => {
  const r = await drift(tiny, 2048, 100);
  assert.equal(r.reference.tokens, 2048);
  assert.equal(r.steps.length, 21);
  assert.equal(r.overall.stepsCompared, 21);
  for (const s of r.steps) {
    assert.ok((s.maxAbs as number) < MAX_ABS_F32, `step ${s.step}: max abs ${s.maxAbs}`);
    assert.ok((s.maxKl as number) < MAX_KL_F32, `step ${s.step}: KL ${s.maxKl}`);
    assert.equal(s.argmaxAgreement, 1);
  }
});

test('recall, f32: float-level agreement at every step', async () => {
  const r = await drift(recall, 2048, 256);
  assert.ok(r.overall.maxAbs < MAX_ABS_F32 && r.overall.maxKl < MAX_KL_F32, JSON.stringify(r.overall));
});

for (const kv of ['f16', 'int8'] as const) {
  test(`tiny-llama, ${kv} KV: drift is measured, not zero, and stays small`, async () => {
    const narrow = await loadModel(join(root, 'tiny'), { kvDtype: kv === 'f16' ? 'float16' : 'int8' });
    try {
      const r = await drift(narrow, 2048, 100, { kv });
      assert.equal(r.kv, kv);
      assert.ok(r.overall.maxAbs > MAX_ABS_F32, `${kv} max abs ${r.overall.maxAbs}`);
      assert.ok(r.overall.maxAbs < (kv === 'f16' ? 0.01 : 1), `${kv} max abs ${r.overall.maxAbs}`);
      assert.equal(r.steps[0]?.maxAbs, 0, 'the first chunk reads no narrowed rows');
    } finally {
      await narrow.close();
    }
  });
}

test('a reference that exceeds the memory bound covers the longest prefix that fits; later steps have none', async () => {
  const dims = modelDims(tiny);
  const limit = Math.ceil(singlePassBytes(dims, 1024).total / 2 ** 20);
  const r = await drift(tiny, 2048, 256, { referenceLimitMiB: limit });
  assert.ok(r.reference.tokens >= 768 && r.reference.tokens <= 1024 && r.reference.tokens % 256 === 0, String(r.reference.tokens));
  assert.equal(r.overall.stepsCompared, r.reference.tokens / 256);
  assert.equal(r.steps.at(-1)?.maxAbs, undefined);
  await assert.rejects(drift(tiny, 2048, 256, { referenceLimitMiB: 1 }), (e: unknown) => e instanceof NiahError && /over --reference-limit-mib 1/.test(e.message));
  await assert.rejects(drift(tiny, 512, 512), (e: unknown) => e instanceof NiahError && e.code === 'KVF_DRIFT_BAD_INPUT');
});

test('a document beyond max_position_embeddings is refused before it is written or folded', async () => {
  const tooLong = (e: unknown) => e instanceof NiahError && e.code === 'KVF_DRIFT_TOO_LONG' && /131073 tokens is beyond the model's 131072 positions/.test(e.message);
  assert.throws(() => driftDocument(niahModel(tiny), 131073), tooLong);
  await assert.rejects(measureDrift({ model: tiny.decoder, dims: modelDims(tiny), tokens: new Int32Array(131073), chunkSize: 4096 }), tooLong);
});

test('KL and max-abs of a known pair of rows', () => {
  const a = Float32Array.of(0, Math.log(3)); // p = (1/4, 3/4)
  const b = Float32Array.of(0, 0); // q = (1/2, 1/2)
  const d = compareRows(a, b);
  assert.ok(Math.abs(d.kl - (0.25 * Math.log(0.5) + 0.75 * Math.log(1.5))) < 1e-7);
  assert.ok(Math.abs(d.maxAbs - Math.log(3)) < 1e-6);
  assert.equal(d.sameArgmax, false);
  assert.equal(compareRows(a, a).kl, 0);
});

test('drift.md, drift.json and a well-formed drift.svg hold the numbers', async () => {
  const r = await drift(tiny, 1024, 256, { kv: 'int8' });
  const [md, json, svg] = (await writeDrift(join(root, 'out'), r, 'tiny')).map((p) => readFileSync(p, 'utf8')) as [string, string, string];
  const parsed = JSON.parse(json);
  assert.equal(parsed.steps.length, 4);
  assert.equal(parsed.overall.maxAbs, r.overall.maxAbs);
  for (const s of r.steps) assert.ok(md.includes(`| ${s.step} | ${s.start}–${s.end - 1} | ${(s.maxAbs as number).toExponential(2)} |`), `step ${s.step} row`);
  const names = checkSvg(svg);
  assert.equal(names.filter((n) => n === 'circle').length, 2 * 4);
  assert.ok(svg.includes(`step 4: ${(r.steps[3]!.maxAbs as number).toExponential(3)}`));
  for (const label of ['fold step', 'max |folded − reference| logit', 'mean KL(reference ‖ folded)']) assert.ok(svg.includes(label), label);
});
