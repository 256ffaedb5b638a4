/** The llama3 RoPE scaling rule, checked on Llama 3.1 8B's parameters against values worked out by hand. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ropeInverseFrequencies } from './llama-graph.ts';
import { type RopeScaling, ropeFrequencies } from './rope.ts';

/** Llama 3.1 8B's config.json: rope_theta 500000, head_dim 128. */
const LLAMA31: RopeScaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };

test('plain RoPE is theta^(-2j/D)', () => {
  const inv = ropeFrequencies(10000, 8);
  assert.deepEqual(Array.from(inv), [1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75]);
});

test('llama3 keeps pairs with wavelength under 2048, divides those over 8192 by 8, and interpolates between', () => {
  const plain = ropeFrequencies(500000, 128);
  const scaled = ropeFrequencies(500000, 128, LLAMA31);
  const ratio = Array.from(scaled, (f, j) => f / (plain[j] as number));
  // 2π / 500000^(-j/64) < 2048 for j <= 28; > 8192 for j >= 35 (worked out by hand).
  for (let j = 0; j <= 28; j++) assert.equal(ratio[j], 1, `pair ${j} is kept`);
  for (let j = 35; j < 64; j++) assert.ok(Math.abs((ratio[j] as number) - 1 / 8) < 1e-15, `pair ${j} is divided by the factor`);
  // Pair 32: wavelength 2π·sqrt(500000) = 4442.88, smooth = (8192 / 4442.88 - 1) / 3 = 0.281283,
  // scale = (1 - smooth) / 8 + smooth = 0.371122.
  assert.ok(Math.abs((ratio[32] as number) - 0.3711222795) < 1e-9, `pair 32 scale ${ratio[32]}`);
  for (let j = 29; j <= 34; j++) assert.ok((ratio[j] as number) < 1 && (ratio[j] as number) > 1 / 8, `pair ${j} is interpolated`);
  for (let j = 1; j < 64; j++) assert.ok((ratio[j] as number) <= (ratio[j - 1] as number), 'the scale falls monotonically from 1 to 1/8');
});

test('at the band edges the interpolation meets both sides (wavelength exactly original / high or original / low)', () => {
  // theta chosen so pair 1 of a 4-dim head has wavelength exactly 2π·theta^(1/2): set it to 2048 and 8192.
  for (const [wavelength, expected] of [
    [2048, 1],
    [8192, 1 / 8],
  ] as const) {
    const theta = (wavelength / (2 * Math.PI)) ** 2;
    const plain = ropeFrequencies(theta, 4);
    const scaled = ropeFrequencies(theta, 4, LLAMA31);
    assert.ok(Math.abs((scaled[1] as number) / (plain[1] as number) - expected) < 1e-12, `wavelength ${wavelength}`);
  }
});

test("the graph's inverse frequencies are the float64 rule rounded once to float32", () => {
  const graph = ropeInverseFrequencies(500000, 128, LLAMA31);
  const exact = ropeFrequencies(500000, 128, LLAMA31);
  assert.deepEqual(Array.from(graph), Array.from(exact, Math.fround));
});
