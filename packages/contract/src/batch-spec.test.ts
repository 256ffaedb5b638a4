import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchSpec, checkpointCodecOf, foldSettingsOf } from './batch-spec.ts';
import { DocumentResult } from './document-result.ts';
import { ContractError } from './errors.ts';
import { formatZodError, parseOrThrow } from './zod-format.ts';

const minimal = { corpus: ['corpora/abc/index.json'], model: 'file:///models/tiny' };

function messageOf(value: unknown): string {
  const result = BatchSpec.safeParse(value);
  assert.equal(result.success, false);
  return formatZodError(result.error!);
}

describe('BatchSpec', () => {
  it('fills every default on a minimal spec', () => {
    const spec = BatchSpec.parse(minimal);
    assert.deepEqual(spec, {
      corpus: ['corpora/abc/index.json'],
      model: { uri: 'file:///models/tiny' },
      chunkSize: 256,
      checkpointEvery: 8,
      policy: { kind: 'full' },
      kv: 'f32',
      queries: [],
      maxNewTokens: 32,
      maxBatchSize: 8,
      stop: [],
      maxTokensPerDocument: 131072,
      chatTemplate: false,
      keepFinalState: false,
      grouping: 'file',
    });
  });

  it('accepts a streaming policy with a default sink and a model fingerprint', () => {
    const spec = BatchSpec.parse({
      ...minimal,
      model: { uri: 's3://models/llama', fingerprint: 'abc' },
      policy: { kind: 'streaming', window: 1024 },
      kvCodec: 'int8',
      queries: ['What is the secret?'],
      grouping: 'directory',
    });
    assert.deepEqual(spec.policy, { kind: 'streaming', sink: 4, window: 1024 });
    assert.deepEqual(spec.model, { uri: 's3://models/llama', fingerprint: 'abc' });
    assert.equal(foldSettingsOf(spec).kvCodec, 'int8');
    assert.equal('corpus' in foldSettingsOf(spec), false);
  });

  it('stores checkpoints at the width the cache is held unless kvCodec says; an int8 cache only as int8', () => {
    assert.equal(checkpointCodecOf(BatchSpec.parse(minimal)), 'f32');
    assert.equal(checkpointCodecOf(BatchSpec.parse({ ...minimal, kv: 'f16' })), 'f16');
    assert.equal(checkpointCodecOf(BatchSpec.parse({ ...minimal, kv: 'f16', kvCodec: 'int8' })), 'int8');
    assert.equal(checkpointCodecOf(BatchSpec.parse({ ...minimal, kv: 'int8' })), 'int8');
    assert.equal(messageOf({ ...minimal, kv: 'int8', kvCodec: 'f16' }), "kvCodec: must be 'int8' (or absent) with kv 'int8': an int8 cache is checkpointed as it is held, losslessly");
    assert.match(messageOf({ ...minimal, kv: 'bf16' }), /kv: must be one of 'f32', 'f16', 'int8'/);
  });

  it('names the field of a bad chunkSize', () => {
    assert.equal(messageOf({ ...minimal, chunkSize: 0 }), 'chunkSize: must be an integer >= 1');
    assert.equal(messageOf({ ...minimal, chunkSize: 2.5 }), 'chunkSize: must be an integer >= 1');
  });

  it('names nested and unknown fields and lists every problem', () => {
    const message = messageOf({
      ...minimal,
      policy: { kind: 'streaming', window: 0 },
      kvCodec: 'bf16',
      queries: ['ok', ''],
      chunksize: 3,
    });
    assert.match(message, /policy\.window: must be an integer >= 1/);
    assert.match(message, /kvCodec: must be one of 'f32', 'f16', 'int8'/);
    assert.match(message, /queries\[1\]: must not be empty/);
    assert.match(message, /chunksize: unknown field/);
  });

  it('requires at least one corpus and a model', () => {
    const message = messageOf({ corpus: [] });
    assert.match(message, /corpus: must list at least one corpus/);
    assert.match(message, /model: /);
  });

  it('rejects an unknown policy kind by name', () => {
    assert.match(messageOf({ ...minimal, policy: { kind: 'lru' } }), /^policy\.kind: must be \{kind:'full'\}/);
  });

  it('parseOrThrow throws a coded error naming what was parsed', () => {
    assert.throws(
      () => parseOrThrow(BatchSpec, { ...minimal, maxNewTokens: -1 }, 'batch spec'),
      (err: unknown) =>
        err instanceof ContractError &&
        err.code === 'KVF_CONTRACT_INVALID_INPUT' &&
        err.message === 'invalid batch spec: maxNewTokens: must be an integer >= 0',
    );
  });
});

describe('DocumentResult', () => {
  const base = {
    batchId: `b${'0'.repeat(32)}`,
    docId: 'a'.repeat(64),
    paths: ['src/a.ts'],
    tokens: 1000,
    steps: 4,
    chunkSize: 256,
    timings: { loadMs: 1, foldMs: 100, generateMs: 20, totalMs: 121, tokensPerSecond: 10000 },
    kvBytes: 4096,
    answers: [{ query: 'q', text: 'a', tokenIds: [1, 2] }],
    resumedFromStep: 0,
    checkpoint: { segments: 1, bytes: 4096 },
    attempts: 1,
  };

  it('accepts a completed result and a failed one with its error', () => {
    assert.equal(DocumentResult.safeParse({ ...base, status: 'completed' }).success, true);
    const failed = { ...base, status: 'failed', error: { code: 'KVF_TOO_LONG', message: 'too long' } };
    assert.equal(DocumentResult.safeParse(failed).success, true);
  });

  it('requires error exactly when failed', () => {
    const result = DocumentResult.safeParse({ ...base, status: 'failed' });
    assert.equal(result.success, false);
    assert.equal(formatZodError(result.error!), "error: error must be present exactly when status is 'failed'");
  });
});
