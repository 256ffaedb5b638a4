import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobsError } from './errors.ts';
import { loadEnv } from './env.ts';

describe('loadEnv', () => {
  it('fills defaults from an empty environment', () => {
    const env = loadEnv({});
    assert.equal(env.REDIS_URL, 'redis://127.0.0.1:6379');
    assert.equal(env.KVFOLD_QUEUE_PREFIX, '{kvfold}');
    assert.equal(env.KVFOLD_DEVICE, 'cpu');
    assert.equal(env.KVFOLD_WORKER_CONCURRENCY, 1);
    assert.equal(env.KVFOLD_S3_FORCE_PATH_STYLE, false);
    assert.deepEqual(env.KVFOLD_API_KEYS, []);
    assert.equal(env.LOG_LEVEL, 'info');
    assert.equal(env.KVFOLD_STORE, undefined);
  });

  it('parses every variable', () => {
    const env = loadEnv({
      REDIS_URL: 'rediss://user:pw@redis.internal:6380/2',
      KVFOLD_STORE: 's3://bucket/prefix',
      KVFOLD_S3_ENDPOINT: 'http://127.0.0.1:9000',
      KVFOLD_S3_REGION: 'eu-west-1',
      KVFOLD_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: 'id',
      AWS_SECRET_ACCESS_KEY: 'secret',
      KVFOLD_API_KEYS: ' k1, k2 ,,',
      KVFOLD_QUEUE_PREFIX: '{kv}',
      LOG_LEVEL: 'debug',
      KVFOLD_WORKER_CONCURRENCY: '2',
      KVFOLD_DEVICE: 'cuda',
      KVFOLD_MODEL_CACHE: '/var/cache/kvfold',
      UNRELATED: 'ignored',
    });
    assert.deepEqual(env.KVFOLD_API_KEYS, ['k1', 'k2']);
    assert.equal(env.KVFOLD_S3_FORCE_PATH_STYLE, true);
    assert.equal(env.KVFOLD_WORKER_CONCURRENCY, 2);
    assert.equal(env.KVFOLD_DEVICE, 'cuda');
    assert.equal(env.KVFOLD_STORE, 's3://bucket/prefix');
  });

  it('treats empty strings as unset', () => {
    assert.equal(loadEnv({ KVFOLD_DEVICE: '', REDIS_URL: ' ' }).KVFOLD_DEVICE, 'cpu');
  });

  it('lists every bad variable in one error', () => {
    assert.throws(
      () =>
        loadEnv({
          REDIS_URL: 'http://nope',
          KVFOLD_DEVICE: 'tpu',
          KVFOLD_WORKER_CONCURRENCY: '0',
          KVFOLD_STORE: 'bucket',
          AWS_ACCESS_KEY_ID: 'only-one',
        }),
      (err: unknown) => {
        assert.ok(err instanceof JobsError);
        assert.equal(err.code, 'KVF_ENV_INVALID');
        for (const name of ['REDIS_URL', 'KVFOLD_DEVICE', 'KVFOLD_WORKER_CONCURRENCY', 'KVFOLD_STORE']) {
          assert.match(err.message, new RegExp(`\\n  ${name}: `));
        }
        assert.match(err.message, /KVFOLD_DEVICE: must be one of cpu, webgpu, cuda/);
        return true;
      },
    );
    assert.throws(() => loadEnv({ AWS_ACCESS_KEY_ID: 'only-one' }), /AWS_SECRET_ACCESS_KEY: must be set together/);
  });
});
