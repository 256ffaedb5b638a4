/**
 * A long step does not starve the event loop: the session runs in a worker thread, so a timer
 * keeps firing while a multi-second step runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyKv } from '@kvfold/fold-core';
import { loadModel } from './index.ts';
import { tinyLlamaFolder } from './test-models.ts';

/** One step over this many tokens takes seconds on two cores (attention is quadratic in it). */
const LONG_STEP_TOKENS = 6144;
const TICK_MS = 50;

test('a timer keeps firing while a multi-second step runs', async () => {
  const m = await loadModel(await tinyLlamaFolder('event-loop'), { threads: 1 });
  try {
    const tokens = Int32Array.from({ length: LONG_STEP_TOKENS }, (_, i) => 32 + (i % 90));
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), TICK_MS);
    const started = performance.now();
    await m.decoder.step({ tokens, past: emptyKv(m.decoder.layout), position: 0, logits: 'last' });
    const stepMs = performance.now() - started;
    clearInterval(timer);
    assert.ok(stepMs >= 1000, `the step must be long to prove anything; it took ${stepMs.toFixed(0)} ms`);
    // Blocked, the loop would fire at most once after the step; free, about stepMs / TICK_MS times.
    assert.ok(ticks.length >= (stepMs / TICK_MS) * 0.5, `${ticks.length} ticks during a ${stepMs.toFixed(0)} ms step`);
    const gaps = ticks.slice(1).map((t, i) => t - (ticks[i] as number));
    assert.ok(Math.max(...gaps) < 1000, `longest gap between ticks ${Math.max(...gaps).toFixed(0)} ms`);
  } finally {
    await m.close();
  }
});
