/** Sampling: seeded, HF's temperature / top-k / top-p order, frequencies that follow the softmax; stop strings. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { foldAll } from './fold.ts';
import { generate } from './generate.ts';
import { argmax } from './nll.ts';
import { checkSampling, sampler } from './sampling.ts';
import { positionalModel } from './test-models.ts';

const logits = Float32Array.of(2, 1, 0.5, 0, -1, 3);

test('the same seed draws the same tokens, another seed others', () => {
  const draw = (seed: number) => {
    const pick = sampler({ temperature: 1, seed });
    return Array.from({ length: 40 }, () => pick(logits, 0, 6));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

test('draws follow softmax(logits / temperature)', () => {
  const n = 40000;
  for (const temperature of [1, 0.5]) {
    const pick = sampler({ temperature, seed: 3 });
    const counts = new Array(6).fill(0);
    for (let i = 0; i < n; i++) counts[pick(logits, 0, 6)]++;
    const w = Array.from(logits, (x) => Math.exp(x / temperature));
    const z = w.reduce((a, b) => a + b, 0);
    w.forEach((x, v) => {
      const p = x / z;
      const sd = Math.sqrt((p * (1 - p)) / n);
      assert.ok(Math.abs(counts[v] / n - p) < 5 * sd + 1e-3, `token ${v} at temperature ${temperature}: ${counts[v] / n} vs ${p}`);
    });
  }
});

test('top-k keeps the k most likely; top-p the smallest set reaching p; k = 1 is greedy', () => {
  const seen = (o: Parameters<typeof sampler>[0]) => {
    const pick = sampler(o);
    return new Set(Array.from({ length: 3000 }, () => pick(logits, 0, 6)));
  };
  assert.deepEqual(seen({ temperature: 1, topK: 2, seed: 1 }), new Set([5, 0]));
  // softmax: token 5 has ~0.61 and token 0 ~0.22: 0.6 is reached by token 5 alone, 0.7 needs both.
  assert.deepEqual(seen({ temperature: 1, topP: 0.6, seed: 1 }), new Set([5]));
  assert.deepEqual(seen({ temperature: 1, topP: 0.7, seed: 1 }), new Set([5, 0]));
  assert.deepEqual(seen({ temperature: 5, topK: 1, seed: 1 }), new Set([argmax(logits, 0, 6)]));
});

test('settings that cannot work are refused by name', () => {
  assert.throws(() => checkSampling({ temperature: 0, seed: 1 }), /temperature must be a number > 0, got 0/);
  assert.throws(() => checkSampling({ temperature: 1, topK: -1, seed: 1 }), /top-k must be an integer >= 0/);
  assert.throws(() => checkSampling({ temperature: 1, topP: 1.5, seed: 1 }), /top-p must be in \(0, 1\]/);
  assert.throws(() => checkSampling({ temperature: 1, seed: 0.5 }), /seed must be an integer/);
});

test('a stop string ends the answer before it; the cache is rewound', async () => {
  const model = positionalModel();
  const cache = await model.createCache({ capacity: 64 });
  await foldAll(model, cache, Int32Array.of(1, 2, 3, 4, 5), { chunkSize: 5 });
  // The positional model answers (context + 1) % 8, each token one more: 6, 7, 0, 1, 2, ...
  const decode = (ids: readonly number[]) => ids.map((i) => 'abcdefgh'[i]).join('');
  const g = await generate(model, cache, Int32Array.of(6), { maxNewTokens: 8, stopStrings: ['bc'], decode });
  assert.deepEqual(g, { tokenIds: [6, 7, 0, 1, 2], stopReason: 'stop-string', text: 'gha' });
  const all = await generate(model, cache, Int32Array.of(6), { maxNewTokens: 3, decode });
  assert.deepEqual(all, { tokenIds: [6, 7, 0], stopReason: 'max-new-tokens', text: 'gha' });
  assert.equal(cache.length, 5);
  await assert.rejects(generate(model, cache, Int32Array.of(6), { maxNewTokens: 3, stopStrings: ['x'] }), /stop strings need a decode function/);
});
