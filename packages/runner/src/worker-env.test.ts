import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadWorkerEnv } from './worker-env.ts';

test('defaults: local store and model cache under the working folder, 28 s grace, no health port', () => {
  const env = loadWorkerEnv({}, '/srv/kvfold');
  assert.equal(env.KVFOLD_STORE, 'file:///srv/kvfold/.kvfold/store');
  assert.equal(env.KVFOLD_MODEL_CACHE, '/srv/kvfold/.kvfold/models-cache');
  assert.equal(env.KVFOLD_STOP_GRACE_MS, 28_000);
  assert.equal(env.KVFOLD_WORKER_HEALTH_PORT, undefined);
  assert.equal(env.KVFOLD_WORKER_CONCURRENCY, 1);
  assert.equal(env.KVFOLD_STALLED_INTERVAL_MS, 30_000);
});

test('every bad variable is named in one error', () => {
  assert.throws(
    () => loadWorkerEnv({ KVFOLD_STOP_GRACE_MS: 'soon', KVFOLD_THREADS: '0', REDIS_URL: 'http://nope' }),
    (err: Error) => /KVFOLD_STOP_GRACE_MS/.test(err.message) && /KVFOLD_THREADS/.test(err.message) && /REDIS_URL/.test(err.message),
  );
  assert.throws(() => loadWorkerEnv({ KVFOLD_THREADS: '0' }), /KVFOLD_THREADS: must be an integer >= 1/);
});

test('KVFOLD_MAX_BATCH_SIZE: unset leaves each batch its own, a count caps it, anything else is named', () => {
  assert.equal(loadWorkerEnv({}).KVFOLD_MAX_BATCH_SIZE, undefined);
  assert.equal(loadWorkerEnv({ KVFOLD_MAX_BATCH_SIZE: '4' }).KVFOLD_MAX_BATCH_SIZE, 4);
  assert.throws(() => loadWorkerEnv({ KVFOLD_MAX_BATCH_SIZE: '0' }), /KVFOLD_MAX_BATCH_SIZE: must be an integer >= 1/);
});
