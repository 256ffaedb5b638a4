import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobsError } from '@kvfold/jobs';
import { loadApiEnv } from './env.ts';

describe('loadApiEnv', () => {
  it('fills the defaults, the store under the working folder included', () => {
    const env = loadApiEnv({}, '/srv/kvfold');
    assert.equal(env.KVFOLD_API_PORT, 8080);
    assert.equal(env.KVFOLD_API_HOST, '127.0.0.1');
    assert.equal(env.KVFOLD_API_BODY_LIMIT, 1024 * 1024);
    assert.equal(env.KVFOLD_API_RATE_LIMIT, 600);
    assert.equal(env.KVFOLD_STORE, 'file:///srv/kvfold/.kvfold/store');
    assert.deepEqual(env.KVFOLD_API_KEYS, []);
    assert.deepEqual([env.KVFOLD_JOB_KEEP_COMPLETED_S, env.KVFOLD_JOB_KEEP_FAILED_S], [86_400, 604_800]);
    assert.deepEqual([env.KVFOLD_API_AUTH_FAILURES, env.KVFOLD_API_AUTH_FAILURE_WINDOW_S, env.KVFOLD_API_CHECK_MODEL], [10, 900, true]);
  });

  it('parses the wrong-key limit and the model check switch', () => {
    const env = loadApiEnv({ KVFOLD_API_AUTH_FAILURES: '3', KVFOLD_API_AUTH_FAILURE_WINDOW_S: '60', KVFOLD_API_CHECK_MODEL: 'false' });
    assert.deepEqual([env.KVFOLD_API_AUTH_FAILURES, env.KVFOLD_API_AUTH_FAILURE_WINDOW_S, env.KVFOLD_API_CHECK_MODEL], [3, 60, false]);
    assert.throws(
      () => loadApiEnv({ KVFOLD_API_AUTH_FAILURES: '0', KVFOLD_API_CHECK_MODEL: 'maybe' }),
      (err: unknown) =>
        err instanceof JobsError && /KVFOLD_API_AUTH_FAILURES: must be an integer >= 1/.test(err.message) && /KVFOLD_API_CHECK_MODEL: must be true or false/.test(err.message),
    );
  });

  it('reads KVFOLD_API_TRUST_PROXY as none, any, or a list of addresses', () => {
    const trust = (v?: string) => loadApiEnv(v === undefined ? {} : { KVFOLD_API_TRUST_PROXY: v }).KVFOLD_API_TRUST_PROXY;
    assert.deepEqual([trust(), trust('false'), trust('true'), trust('10.0.0.1, 10.2.0.0/16')], [false, false, true, ['10.0.0.1', '10.2.0.0/16']]);
  });

  it('parses the API variables and the shared ones', () => {
    const env = loadApiEnv({ KVFOLD_API_PORT: '9000', KVFOLD_API_KEYS: 'a, b', KVFOLD_STORE: 's3://bucket/p', KVFOLD_API_RATE_LIMIT: '5' });
    assert.deepEqual([env.KVFOLD_API_PORT, env.KVFOLD_API_KEYS, env.KVFOLD_STORE, env.KVFOLD_API_RATE_LIMIT], [9000, ['a', 'b'], 's3://bucket/p', 5]);
  });

  it('names every bad variable in one KVF_ENV_INVALID error', () => {
    assert.throws(
      () => loadApiEnv({ KVFOLD_API_PORT: 'eighty', KVFOLD_API_RATE_LIMIT: '0', KVFOLD_JOB_KEEP_FAILED_S: '-1' }),
      (err: unknown) =>
        err instanceof JobsError &&
        err.code === 'KVF_ENV_INVALID' &&
        /KVFOLD_API_PORT: must be an integer >= 0/.test(err.message) &&
        /KVFOLD_API_RATE_LIMIT: must be an integer >= 1/.test(err.message) &&
        /KVFOLD_JOB_KEEP_FAILED_S: must be an integer >= 0/.test(err.message),
    );
  });
});
