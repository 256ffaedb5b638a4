/** The CLI's own variables go through its env schema: a bad one is named, KVFOLD_DEBUG adds the stack. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kvfold } from './test-support.ts';

test('a KVFOLD_API_URL that is not a URL is refused by name before any request', async () => {
  const r = await kvfold(['batches'], { env: { KVFOLD_API_URL: 'not a url' } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /KVFOLD_API_URL: must be a URL such as http:\/\/127\.0\.0\.1:8080/);
});

test('KVFOLD_DEBUG=1 prints the stack trace under the one-line error; unset, only the line', async () => {
  const args = ['fold', 'no-such-file.txt', '--model', '/no/such/model'];
  const plain = await kvfold(args, { env: { KVFOLD_DEBUG: '' } });
  const debug = await kvfold(args, { env: { KVFOLD_DEBUG: '1' } });
  assert.equal(plain.code, 1);
  assert.equal(debug.code, 1);
  assert.doesNotMatch(plain.stderr, /\n\s+at /);
  assert.match(debug.stderr, /\n\s+at /);
});
