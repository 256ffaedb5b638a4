/** The gate the documents folded at once share: caches wait for room together, in order; one alone always goes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CacheAdmission } from './cache-admission.ts';

test('a cache waits while the ones admitted leave no room for it, and goes, in order, once they are released', async () => {
  const gate = new CacheAdmission(100);
  const order: string[] = [];
  const a = await gate.admit(60);
  const b = gate.admit(60).then((release) => {
    order.push('b');
    return release;
  });
  const c = gate.admit(30).then((release) => {
    order.push('c');
    return release;
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [], 'b does not fit beside a; c waits behind b');
  assert.equal(gate.heldBytes, 60);
  a();
  const [releaseB, releaseC] = await Promise.all([b, c]);
  assert.deepEqual(order, ['b', 'c']);
  assert.equal(gate.heldBytes, 90);
  releaseB();
  releaseB();
  assert.equal(gate.heldBytes, 30, 'a second release of the same cache changes nothing');
  releaseC();
  assert.equal(gate.heldBytes, 0);
});

test('a cache larger than the budget is admitted when it is alone (the memory guard decides), and holds the others back', async () => {
  const gate = new CacheAdmission(100);
  const big = await gate.admit(500);
  let small = false;
  const next = gate.admit(1).then((release) => {
    small = true;
    return release;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(small, false);
  big();
  (await next)();
  assert.equal(small, true);
  assert.equal(gate.heldBytes, 0);
});
