/**
 * The client against a loopback HTTP server that answers as the API would: answers parsed with the
 * contract's shapes, the API's error body kept as the error's code, the key sent, a streamed upload
 * arriving as one multipart body, and a dead address or a non-JSON answer named.
 */
import assert from 'node:assert/strict';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApiClient, ApiClientError, ApiClientErrorCode } from './index.ts';

const status = {
  id: 'b1',
  state: 'in_progress',
  createdAt: '2026-12-01T00:00:00.000Z',
  updatedAt: '2026-12-01T00:00:01.000Z',
  counts: { total: 3, waiting: 1, active: 1, completed: 1, failed: 0, cancelled: 0 },
  progress: { tokens: 10, totalTokens: 30, fraction: 1 / 3 },
  etaMs: 2000,
};

const seen: Array<{ method: string; url: string; key: string | undefined; body: string; type: string | undefined }> = [];

async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  seen.push({ method: req.method ?? '', url: req.url ?? '', key: req.headers['x-api-key'] as string | undefined, body: Buffer.concat(chunks).toString('utf8'), type: req.headers['content-type'] });
  const send = (code: number, body: unknown) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.url === '/v1/batches/b1') return send(200, status);
  if (req.url === '/v1/batches/bad-shape') return send(200, { ...status, counts: { total: -1 } });
  if (req.url === '/v1/batches/gone') return send(404, { error: { code: 'KVF_API_NOT_FOUND', message: 'no batch gone' } });
  if (req.url === '/v1/batches/html') {
    res.writeHead(502, { 'content-type': 'text/html' });
    return void res.end('<html>bad gateway</html>');
  }
  if (req.url === '/v1/batches' && req.method === 'POST') {
    return send(202, { id: 'b2', state: 'queued', documents: 2, added: 2, report: { skipped: [], refused: [] } });
  }
  send(404, { error: { code: 'KVF_API_NOT_FOUND', message: `no route ${req.url}` } });
}

describe('ApiClient', () => {
  const server = createServer((req, res) => void answer(req, res));
  let client: ApiClient;
  before(async () => {
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    client = new ApiClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, apiKey: 'k1' });
  });
  after(() => new Promise<void>((done) => server.close(() => done())));

  it('parses a status with the contract and sends the key', async () => {
    const got = await client.status('b1');
    assert.deepEqual(got, status);
    assert.equal(seen.at(-1)?.key, 'k1');
  });

  it("keeps the API's error code and status", async () => {
    const err = await client.status('gone').catch((e: unknown) => e);
    assert.ok(err instanceof ApiClientError);
    assert.equal(err.code, 'KVF_API_NOT_FOUND');
    assert.equal(err.status, 404);
    assert.equal(err.message, 'no batch gone');
  });

  it('refuses an answer that breaks the contract', async () => {
    const err = await client.status('bad-shape').catch((e: unknown) => e);
    assert.ok(err instanceof ApiClientError);
    assert.equal(err.code, ApiClientErrorCode.BadResponse);
    assert.match(err.message, /counts\.waiting/);
  });

  it('names a non-JSON error answer', async () => {
    const err = await client.status('html').catch((e: unknown) => e);
    assert.ok(err instanceof ApiClientError);
    assert.equal(err.code, ApiClientErrorCode.BadResponse);
    assert.equal(err.status, 502);
    assert.match(err.message, /GET http:\/\/127\.0\.0\.1:\d+\/v1\/batches\/html failed with HTTP 502/);
  });

  it('streams an upload as one multipart body with the spec first', async () => {
    async function* body() {
      yield Buffer.from('hello ');
      yield Buffer.from('world');
    }
    const created = await client.createBatchFromStreams('{"model":"m"}', [{ name: 'a.txt', body: body() }]);
    assert.equal(created.id, 'b2');
    const req = seen.at(-1);
    const boundary = /boundary=(.+)$/.exec(req?.type ?? '')?.[1];
    assert.ok(boundary, `content-type ${req?.type}`);
    const parts = req?.body.split(`--${boundary}`) ?? [];
    assert.match(parts[1] ?? '', /name="spec"[\s\S]*\{"model":"m"\}/);
    assert.match(parts[2] ?? '', /name="file"; filename="a\.txt"[\s\S]*hello world/);
    assert.equal(parts.at(-1)?.trim(), '--');
  });

  it('names an address nobody answers on', async () => {
    const dead = createServer();
    await new Promise<void>((done) => dead.listen(0, '127.0.0.1', done));
    const { port } = dead.address() as AddressInfo;
    await new Promise<void>((done) => dead.close(() => done()));
    const err = await new ApiClient({ baseUrl: `http://127.0.0.1:${port}` }).status('b1').catch((e: unknown) => e);
    assert.ok(err instanceof ApiClientError);
    assert.equal(err.code, ApiClientErrorCode.Unreachable);
    assert.match(err.message, /ECONNREFUSED.*kvfold serve/);
  });
});
