/**
 * The resident plan, which a device session runs (WebGPU keeps its presents on the GPU): here on
 * the CPU with the presents kept as returned, so the same bookkeeping is checked where it can run.
 * The presents the last step returned are the next past; the host keeps the rows for checkpoints
 * and policies; marks pin the presents a question rewinds to; edits of the host rows drop them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createPolicy, foldAll, generate } from '@kvfold/fold-core';
import { type LoadedModel, loadModel, ropeInverseFrequencies } from './index.ts';
import { cacheDiff, foldLogits, maxAbsDiff, tinyLlamaFolder } from './test-models.ts';

let inPlace: LoadedModel;
let resident: LoadedModel;
let tokens: Int32Array;

before(async () => {
  const dir = await tinyLlamaFolder('resident');
  inPlace = await loadModel(dir);
  resident = await loadModel(dir, { foldGraph: 'resident' });
  tokens = inPlace.tokenizer.encodeDocument('A resident cache stays where the session runs and is fed back as it was returned. '.repeat(4));
});
after(async () => {
  await inPlace.close();
  await resident.close();
});

test('the resident plan keeps the presents, exposes the new rows, and folds to the same logits and cache', async () => {
  assert.equal(resident.decoder.plan.kind, 'resident');
  assert.match(resident.decoder.planSummary, /presents kept as returned and fed back, new rows copied to the host/);
  const a = await foldLogits(inPlace.decoder, tokens, 29);
  const b = await foldLogits(resident.decoder, tokens, 29);
  assert.ok(maxAbsDiff(a.logits, b.logits) <= 1e-4);
  assert.ok((await cacheDiff(a.cache, b.cache)) <= 1e-4, 'the host rows are the cache');
});

test('questions rewind to the pinned presents: every answer equals the in-place engine’s', async () => {
  const a = await foldLogits(inPlace.decoder, tokens, 64);
  const b = await foldLogits(resident.decoder, tokens, 64);
  for (const q of [' resident?', ' where', ' cache']) {
    const ids = inPlace.tokenizer.encodeContinuation(q);
    assert.deepEqual(await generate(resident.decoder, b.cache, ids, { maxNewTokens: 8 }), await generate(inPlace.decoder, a.cache, ids, { maxNewTokens: 8 }), q);
  }
  assert.equal(b.cache.length, tokens.length);
});

test('an eviction or a reload of the host rows drops the device copy, and the fold stays right', async () => {
  const invFreq = ropeInverseFrequencies(inPlace.folder);
  const policy = () => createPolicy({ kind: 'streaming', sink: 4, window: 48 }, { invFreq });
  const a = await foldLogits(inPlace.decoder, tokens, 16, { policy: policy() });
  const b = await foldLogits(resident.decoder, tokens, 16, { policy: policy() });
  assert.ok(maxAbsDiff(a.logits, b.logits) <= 1e-4);
  // A resume: rows loaded into a fresh cache, then the fold goes on from them.
  const half = Math.floor(tokens.length / 32) * 16;
  const first = await resident.decoder.createCache({ capacity: tokens.length });
  await foldAll(resident.decoder, first, tokens.subarray(0, half), { chunkSize: 16 });
  const resumed = await resident.decoder.createCache({ capacity: tokens.length });
  await resumed.append(await first.read(0, first.length), first.mark());
  const rest = await foldAll(resident.decoder, resumed, tokens, { chunkSize: 16, from: { step: half / 16 } });
  const whole = await foldLogits(inPlace.decoder, tokens, 16);
  assert.ok((await cacheDiff(resumed, whole.cache)) <= 1e-4);
  assert.equal(rest.steps.length, Math.ceil(tokens.length / 16) - half / 16);
});
