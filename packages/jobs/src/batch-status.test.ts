import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BatchEntry } from './batch-registry.ts';
import { BatchRecord, BatchSpec } from '@kvfold/contract';
import { summarizeBatch } from './batch-status.ts';

const zero = { completed: 0, failed: 0, cancelled: 0, removed: 0, tokens: 0, bytes: 0 };

function entry(overrides: Partial<BatchEntry> = {}): BatchEntry {
  const record = BatchRecord.parse({
    id: `b${'1'.repeat(32)}`,
    spec: BatchSpec.parse({ corpus: ['corpora/c/index.json'], model: 'file:///m' }),
    createdAt: '2026-01-01T00:00:00.000Z',
    documents: 4,
    totalBytes: 4000,
    corpusIds: ['c'.repeat(64)],
    corpus: ['corpora/c/index.json'],
    ingest: { files: 4, documents: 4, bytes: 4000, ignored: 0, skipped: 0, refused: 0 },
  });
  return { record, state: 'queued', updatedAt: record.createdAt, counters: zero, ...overrides };
}

describe('summarizeBatch', () => {
  it('estimates tokens from bytes before anything reports, and has no ETA while nothing runs', () => {
    const status = summarizeBatch(entry(), { parent: 'waiting-children', active: [] }, 0);
    assert.equal(status.state, 'queued');
    assert.deepEqual(status.counts, { total: 4, waiting: 4, active: 0, completed: 0, failed: 0, cancelled: 0 });
    assert.deepEqual(status.progress, { tokens: 0, totalTokens: 1000, fraction: 0 });
    assert.equal(status.etaMs, null);
  });

  it('uses reported counts and fold progress, learns the token ratio, and derives an ETA', () => {
    const counters = { ...zero, completed: 1, tokens: 1000, bytes: 1000 };
    const active = [{ bytes: 1000, tokens: 250, totalTokens: 1000, etaMs: 3000, startedAt: 0 }];
    const status = summarizeBatch(entry({ counters }), { parent: 'waiting-children', active }, 1000);
    assert.equal(status.state, 'in_progress');
    assert.deepEqual(status.counts, { total: 4, waiting: 2, active: 1, completed: 1, failed: 0, cancelled: 0 });
    // 1000 reported + 250 active; total 1000 + 1000 + 2 waiting x 1000 bytes x 1 token/byte.
    assert.deepEqual(status.progress, { tokens: 1250, totalTokens: 4000, fraction: 1250 / 4000 });
    // Rate 750 tokens / 3000 ms; 2750 tokens left.
    assert.equal(status.etaMs, 11000);
  });

  it('counts cancelled documents apart from failed ones and ends cancelling when none is active', () => {
    const counters = { ...zero, completed: 1, cancelled: 1, removed: 2, tokens: 1500, bytes: 4000 };
    const status = summarizeBatch(entry({ state: 'cancelling', counters }), { parent: 'waiting', active: [] }, 0);
    assert.equal(status.state, 'cancelled');
    assert.deepEqual(status.counts, { total: 4, waiting: 0, active: 0, completed: 1, failed: 0, cancelled: 3 });
    assert.equal(status.progress.fraction, 1);
    assert.equal(status.etaMs, 0);
  });
});
