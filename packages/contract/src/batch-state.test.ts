import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BATCH_STATES, canTransition, deriveBatchState, isTerminal, predecessorsOf } from './batch-state.ts';

const idle = { parent: 'waiting-children', active: 0, finished: 0 } as const;

describe('batch state machine', () => {
  it('never leaves a terminal state', () => {
    for (const from of ['completed', 'failed', 'cancelled'] as const) {
      assert.equal(isTerminal(from), true);
      for (const to of BATCH_STATES) assert.equal(canTransition(from, to), from === to, `${from} -> ${to}`);
    }
  });

  it('lists the predecessors used by the atomic compare-and-set', () => {
    assert.deepEqual(predecessorsOf('cancelled'), ['cancelling']);
    assert.deepEqual(predecessorsOf('queued'), ['validating']);
    assert.deepEqual(predecessorsOf('cancelling'), ['validating', 'queued', 'in_progress']);
  });

  it('derives in_progress, finalizing and completed from the queue', () => {
    assert.equal(deriveBatchState('queued', idle), 'queued');
    assert.equal(deriveBatchState('queued', { ...idle, active: 1 }), 'in_progress');
    assert.equal(deriveBatchState('queued', { ...idle, finished: 2 }), 'in_progress');
    assert.equal(deriveBatchState('in_progress', { ...idle, parent: 'waiting', finished: 3 }), 'finalizing');
    assert.equal(deriveBatchState('in_progress', { ...idle, parent: 'active', finished: 3 }), 'finalizing');
    assert.equal(deriveBatchState('finalizing', { ...idle, parent: 'completed', finished: 3 }), 'completed');
    assert.equal(deriveBatchState('in_progress', { ...idle, parent: 'failed' }), 'failed');
  });

  it('ends cancelling only when no document is active, and keeps validating as stored', () => {
    assert.equal(deriveBatchState('cancelling', { ...idle, active: 1 }), 'cancelling');
    assert.equal(deriveBatchState('cancelling', { ...idle, parent: 'waiting' }), 'cancelled');
    assert.equal(deriveBatchState('validating', { ...idle, active: 3 }), 'validating');
    assert.equal(deriveBatchState('cancelled', { ...idle, parent: 'completed' }), 'cancelled');
  });
});
