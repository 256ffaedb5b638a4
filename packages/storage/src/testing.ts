/**
 * Test support: a real S3-protocol server (s3rver) on 127.0.0.1, a random free port and a temp
 * directory, for this package's tests and other packages' (`@kvfold/storage/testing`).
 *
 * What s3rver 3.7 does and does not do, verified against it: it stores PutObject bodies with a
 * known length and multipart uploads byte-exactly and accepts checksum headers; it rejects an
 * unknown access key id (403 InvalidAccessKeyId) but does not verify SigV4 signatures, so a wrong
 * secret with the right key id is accepted. On its own it ignores If-None-Match / If-Match on
 * writes and writes objects in place, so a reader can see half a body.
 *
 * Two things are added in front of its router so that it behaves as S3 does where our code relies
 * on it. Requests on one object are serialized (each holds the key until its response closes; a
 * write takes it only once its body has arrived), so a write is atomic to readers and to other
 * writers. And, unless `conditionalWrites: false`, the conditional headers are enforced as S3
 * does: `If-None-Match: *` on an existing key and an `If-Match` etag other than the current one
 * answer 412 PreconditionFailed, `If-Match` on a missing key 404 NoSuchKey. With
 * `conditionalWrites: false` the headers are ignored, like a backend that predates conditional
 * writes, and `settings` says so.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { S3ObjectStore, type S3Settings } from './s3-object-store.ts';

/** The slice of s3rver's (untyped, CommonJS; a Koa application) API used here. */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer: import('node:http').Server;
  /** Koa's middleware list, composed when `run` starts listening; the router is last. */
  middleware: KoaMiddleware[];
  store: { getMetadata(bucket: string, key: string): Promise<{ etag: string }> };
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, unknown>;
  status: number;
  body: unknown;
  req: IncomingMessage;
  res: import('node:http').ServerResponse;
  get(header: string): string;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

/** s3rver's built-in account. */
export const TEST_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface TestS3Server {
  /** e.g. `http://127.0.0.1:40123`. */
  readonly endpoint: string;
  readonly bucket: string;
  /** Settings to pass to `openStore(uri, { s3 })` or `new S3ObjectStore`. */
  readonly settings: S3Settings;
  /** Every request the server received, as `METHOD /path?query`, oldest first. */
  readonly requests: string[];
  /** `s3://<bucket>/<prefix>` for a fresh prefix. */
  uri(prefix?: string): string;
  /** An S3ObjectStore on the bucket under `prefix`, closed by `stop()`. */
  store(prefix?: string, overrides?: S3Settings): S3ObjectStore;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

export interface TestS3ServerOptions {
  bucket?: string;
  /** Enforce If-None-Match / If-Match on writes, as S3 does. Default true. */
  conditionalWrites?: boolean;
}

/** Starts s3rver with one empty bucket. */
export async function startTestS3Server(options: TestS3ServerOptions = {}): Promise<TestS3Server> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const bucket = options.bucket ?? 'kvfold-test';
  const directory = await mkdtemp(join(tmpdir(), 'kvfold-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const conditionalWrites = options.conditionalWrites ?? true;
  server.middleware.splice(server.middleware.length - 1, 0, objectSemantics(server, conditionalWrites));
  const { port } = await server.run();
  const requests: string[] = [];
  server.httpServer.on('request', (req: import('node:http').IncomingMessage) => {
    requests.push(`${req.method} ${req.url}`);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const settings: S3Settings = {
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: TEST_S3_CREDENTIALS,
    conditionalWrites,
  };
  const opened: S3ObjectStore[] = [];
  return {
    endpoint,
    bucket,
    settings,
    requests,
    uri: (prefix = '') => `s3://${bucket}/${prefix}`,
    store(prefix = '', overrides = {}) {
      const s = new S3ObjectStore(bucket, prefix, { ...settings, ...overrides });
      opened.push(s);
      return s;
    },
    async stop() {
      for (const s of opened) s.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The S3 behaviour added in front of s3rver's router: see the module comment. */
function objectSemantics(server: S3rverInstance, conditionalWrites: boolean): KoaMiddleware {
  const tails = new Map<string, Promise<void>>();
  return async (ctx, next) => {
    const slash = ctx.path.indexOf('/', 1);
    const isPart = ctx.query.partNumber !== undefined;
    if (slash < 0 || slash === ctx.path.length - 1 || isPart) return next(); // a bucket-level request or one part
    const bucket = decodeURIComponent(ctx.path.slice(1, slash));
    const key = decodeURIComponent(ctx.path.slice(slash + 1));
    const id = `${bucket}/${key}`;
    const writes = ctx.method === 'PUT' || (ctx.method === 'POST' && ctx.query.uploadId !== undefined);
    if (writes) {
      // Receive the whole body before taking the key, so a slow or stopped sender holds up nobody:
      // as on S3, readers see the previous version until the write is complete.
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
      ctx.req = Object.assign(Readable.from(chunks), { headers: ctx.req.headers }) as unknown as IncomingMessage;
    }
    // Take the key: wait for the request before this one to close, and hold it until this one does.
    const before = tails.get(id) ?? Promise.resolve();
    let release = () => {};
    const mine = new Promise<void>((done) => {
      release = done;
    });
    tails.set(id, mine);
    ctx.res.once('close', () => {
      release();
      if (tails.get(id) === mine) tails.delete(id);
    });
    await before;
    const refusal = conditionalWrites && writes ? await preconditionFailure(server, bucket, key, ctx.get('if-match'), ctx.get('if-none-match')) : null;
    if (refusal) {
      ctx.status = refusal.status;
      ctx.body = { Error: { Code: refusal.code, Message: refusal.message, Key: key } };
      return;
    }
    await next();
  };
}

/** How S3 refuses a conditional write to `key` given its current etag, or null when it may go ahead. */
async function preconditionFailure(server: S3rverInstance, bucket: string, key: string, ifMatch: string, ifNoneMatch: string) {
  if (!ifMatch && !ifNoneMatch) return null;
  const current = await server.store.getMetadata(bucket, key).then(
    (m) => m.etag,
    () => null,
  );
  const bare = (etag: string) => etag.replace(/^W\//, '').replace(/"/g, '');
  if (ifMatch && current === null) return { status: 404, code: 'NoSuchKey', message: 'The specified key does not exist.' };
  if ((ifNoneMatch === '*' && current !== null) || (ifMatch && ifMatch !== '*' && bare(ifMatch) !== bare(current ?? ''))) {
    return { status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold' };
  }
  return null;
}
