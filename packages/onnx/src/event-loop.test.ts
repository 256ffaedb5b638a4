/**
 * A long step does not starve the event loop: the session runs in a worker thread, so a timer
 * keeps firing while a multi-second step runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModel } from './index.ts';
import { tinyLlamaFolder } from './test-models.ts';

/** A step must last this long to prove anything: a blocked loop would miss every tick in it. */
const MIN_STEP_MS = 500;
const TICK_MS = 20;

test('a timer keeps firing while a multi-second step runs', async () => {
  const m = await loadModel(await tinyLlamaFolder('event-loop'), { threads: 1 });
  try {
    // Attention is quadratic in the step's length: double it until one step is long on this CPU.
    const step = async (n: number) => {
      const tokens = Int32Array.from({ length: n }, (_, i) => 32 + (i % 90));
      const cache = await m.decoder.createCache({ capacity: n });
      const started = performance.now();
      await m.decoder.step({ tokens, cache, logits: 'last' });
      const ms = performance.now() - started;
      await cache.release();
      return ms;
    };
    let n = 1024;
    while ((await step(n)) < MIN_STEP_MS / 2) n *= 2;
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), TICK_MS);
    const stepMs = await step(n * 2);
    clearInterval(timer);
    assert.ok(stepMs >= MIN_STEP_MS, `the step must be long to prove anything; it took ${stepMs.toFixed(0)} ms`);
    // Blocked, the loop would fire at most once after the step; free, about stepMs / TICK_MS times.
    assert.ok(ticks.length >= (stepMs / TICK_MS) * 0.5, `${ticks.length} ticks during a ${stepMs.toFixed(0)} ms step`);
    const gaps = ticks.slice(1).map((t, i) => t - (ticks[i] as number));
    assert.ok(Math.max(...gaps) < stepMs / 2, `longest gap between ticks ${Math.max(...gaps).toFixed(0)} ms in a ${stepMs.toFixed(0)} ms step`);
  } finally {
    await m.close();
  }
});
