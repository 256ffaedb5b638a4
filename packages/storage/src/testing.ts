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
 *
 * S3's size rules are enforced too, which s3rver leaves out: a PutObject or a part over 5 GiB is
 * refused (400 EntityTooLarge), a part number outside 1..10,000 (400 InvalidArgument), and a
 * CompleteMultipartUpload whose parts other than the last are under 5 MiB (400 EntityTooSmall). A
 * completed multipart object gets S3's ETag, the MD5 of its parts' MD5s and the part count
 * (`"<md5>-<parts>"`), not the MD5 of its content, so nothing can mistake it for a content hash.
 * AbortMultipartUpload (which s3rver does not route) drops an upload's parts.
 *
 * With `KVFOLD_TEST_S3=rgw` in the environment (and `KVFOLD_TEST_S3_ENDPOINT`,
 * `KVFOLD_TEST_S3_ACCESS_KEY`, `KVFOLD_TEST_S3_SECRET_KEY`, as infra/rgw/up.sh writes them to its
 * `env` file), the tests run on a Ceph RADOS Gateway instead: each server is a fresh, uniquely
 * named bucket there, created on start and emptied and deleted by `stop()`. A pass-through proxy
 * on a free loopback port sits in front of the gateway, so that `requests` is recorded as on
 * s3rver; with `conditionalWrites: false` it also drops If-Match / If-None-Match from writes (and
 * signs them again without those headers), so the gateway then behaves as a backend without
 * conditional writes. Everything else is the gateway's own behaviour, including where it differs
 * from S3: `testS3Kind` says which server the tests are on, for the few that depend on it.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { createServer, type IncomingMessage, request as httpRequest } from 'node:http';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { S3ObjectStore, type S3Settings } from './s3-object-store.ts';

/** The slice of s3rver's (untyped, CommonJS; a Koa application) API used here. */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer: import('node:http').Server;
  /** Koa's middleware list, composed when `run` starts listening; the router is last. */
  middleware: KoaMiddleware[];
  store: {
    getMetadata(bucket: string, key: string): Promise<{ etag: string }>;
    /** `<dir>/<bucket>/<key dirs>/<key name>._S3rver_<resource>`; resource `uploads` with no key holds the parts. */
    getResourcePath(bucket: string, key: string | undefined, resource: string): string;
    putMetadata(bucket: string, key: string, metadata: Record<string, unknown>, md5: string): Promise<void>;
    /** Joins an upload's parts into its object; the controller answers with `md5` as the ETag. */
    putObjectMultipart(bucket: string, uploadId: string, parts: { number: number; etag: string }[]): Promise<{ md5: string; size: number }>;
  };
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

/** S3's largest PutObject body and largest part (5 GiB). */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** S3's smallest part, except the last one of an upload (5 MiB). */
const MIN_PART_BYTES = 5 * 1024 ** 2;
/** S3's part numbers run from 1 to 10,000. */
const MAX_PART_NUMBER = 10_000;
/** Bytes one read moves while joining parts. */
const PART_COPY_CHUNK = 1024 * 1024;

/** Which S3 server the tests run on: `rgw` when `KVFOLD_TEST_S3=rgw`, s3rver otherwise. */
export type TestS3Kind = 's3rver' | 'rgw';
export const testS3Kind: TestS3Kind = testS3KindFrom(process.env.KVFOLD_TEST_S3);

function testS3KindFrom(value: string | undefined): TestS3Kind {
  if (value === undefined || value === '' || value === 's3rver') return 's3rver';
  if (value === 'rgw') return 'rgw';
  throw new Error(`KVFOLD_TEST_S3=${value} is not a test S3 server (expected rgw, s3rver or unset)`);
}

/** The gateway's address and account, from the environment that infra/rgw/up.sh describes. */
function rgwEnvironment(): { endpoint: string; accessKeyId: string; secretAccessKey: string } {
  const read = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`KVFOLD_TEST_S3=rgw needs ${name} (run infra/rgw/up.sh, then set -a; . /tmp/kvfold-rgw/env; set +a)`);
    return value;
  };
  return {
    endpoint: read('KVFOLD_TEST_S3_ENDPOINT').replace(/\/+$/, ''),
    accessKeyId: read('KVFOLD_TEST_S3_ACCESS_KEY'),
    secretAccessKey: read('KVFOLD_TEST_S3_SECRET_KEY'),
  };
}

/** The test server's account: s3rver's built-in one, or the gateway's user. */
export const TEST_S3_CREDENTIALS: { readonly accessKeyId: string; readonly secretAccessKey: string } =
  testS3Kind === 'rgw'
    ? { accessKeyId: rgwEnvironment().accessKeyId, secretAccessKey: rgwEnvironment().secretAccessKey }
    : { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface TestS3Server {
  /** The server behind `endpoint`. */
  readonly kind: TestS3Kind;
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
  /**
   * Puts an object of `size` bytes in place without an upload: a sparse file in the server's
   * directory holding `head` at its start and zeros after it. Reads of it are real S3 reads; what
   * it saves is sending gigabytes up, for tests of large downloads. On the gateway the object is
   * uploaded (its OSD keeps at most 2 GiB).
   */
  placeSparseObject(key: string, size: number, head?: Uint8Array): Promise<void>;
  /** Stops the server and removes its directory (on the gateway: empties and deletes the bucket). */
  stop(): Promise<void>;
}

export interface TestS3ServerOptions {
  /** The bucket's name; on the gateway a unique suffix is added. */
  bucket?: string;
  /** Enforce If-None-Match / If-Match on writes, as S3 does. Default true. */
  conditionalWrites?: boolean;
}

/** Starts s3rver with one empty bucket, or with `KVFOLD_TEST_S3=rgw` makes one on the gateway. */
export async function startTestS3Server(options: TestS3ServerOptions = {}): Promise<TestS3Server> {
  if (testS3Kind === 'rgw') return startRgwBucket(options);
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
  completeAsS3(server.store);
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
    kind: 's3rver',
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
    async placeSparseObject(key, size, head = new Uint8Array(0)) {
      const path = server.store.getResourcePath(bucket, key, 'object');
      await mkdir(dirname(path), { recursive: true });
      const file = await open(path, 'w');
      try {
        await file.truncate(size);
        await file.write(head, 0, head.length, 0);
      } finally {
        await file.close();
      }
      // An ETag that changes with what was placed, as a new upload's would.
      const etag = createHash('md5').update(`${key}\0${size}\0`).update(head).digest('hex');
      await server.store.putMetadata(bucket, key, {}, etag);
    },
    async stop() {
      for (const s of opened) s.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** A fresh bucket on the gateway, behind a recording proxy: see the module comment. */
async function startRgwBucket(options: TestS3ServerOptions): Promise<TestS3Server> {
  const rgw = rgwEnvironment();
  const bucket = `${options.bucket ?? 'kvfold-test'}-${randomBytes(6).toString('hex')}`;
  const conditionalWrites = options.conditionalWrites ?? true;
  const credentials = { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
  const admin = new S3Client({ region: 'us-east-1', forcePathStyle: true, endpoint: rgw.endpoint, credentials });
  const requests: string[] = [];
  let proxy: { endpoint: string; close(): Promise<void> } | undefined;
  try {
    // Open to unsigned requests, as s3rver is: tests send some raw HTTP requests.
    await admin.send(new CreateBucketCommand({ Bucket: bucket, ACL: 'public-read-write' }));
    proxy = await startRgwProxy(new URL(rgw.endpoint), requests, conditionalWrites ? null : rgw.secretAccessKey);
  } catch (err) {
    admin.destroy();
    throw new Error(`cannot make test bucket ${bucket} on the gateway at ${rgw.endpoint} (is infra/rgw/up.sh running?): ${String(err)}`, { cause: err });
  }
  const { endpoint, close } = proxy;
  const settings: S3Settings = { endpoint, region: 'us-east-1', forcePathStyle: true, credentials, conditionalWrites };
  const opened: S3ObjectStore[] = [];
  const store = (prefix = '', overrides: S3Settings = {}) => {
    const s = new S3ObjectStore(bucket, prefix, { ...settings, ...overrides });
    opened.push(s);
    return s;
  };
  return {
    kind: 'rgw',
    endpoint,
    bucket,
    settings,
    requests,
    uri: (prefix = '') => `s3://${bucket}/${prefix}`,
    store,
    async placeSparseObject(key, size, head = new Uint8Array(0)) {
      async function* zeros() {
        yield head.subarray(0, size);
        const chunk = new Uint8Array(PART_COPY_CHUNK);
        for (let left = size - Math.min(head.length, size); left > 0; left -= chunk.length) yield chunk.subarray(0, Math.min(left, chunk.length));
      }
      await store().put(key, Readable.from(zeros()), { size });
    },
    async stop() {
      for (const s of opened) s.destroy();
      await close();
      try {
        await emptyBucket(admin, bucket);
        await admin.send(new DeleteBucketCommand({ Bucket: bucket }));
      } finally {
        admin.destroy();
      }
    },
  };
}

/** Deletes every object and unfinished multipart upload in `bucket`. */
async function emptyBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const page = await client.send(new ListObjectsCommand({ Bucket: bucket }));
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : []));
    if (keys.length === 0) break;
    for (let i = 0; i < keys.length; i += 32) {
      await Promise.all(keys.slice(i, i + 32).map((Key) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key }))));
    }
  }
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of uploads.Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
  }
}

/**
 * A pass-through HTTP proxy on a free loopback port in front of `target`, recording each request
 * as `METHOD /path?query`. Given the account's secret, it drops If-Match / If-None-Match from
 * every request and signs those requests again without them (SigV4 covers the headers).
 */
async function startRgwProxy(target: URL, requests: string[], unconditionalSecret: string | null) {
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const headers = { ...req.headers };
    if (unconditionalSecret !== null && (headers['if-match'] !== undefined || headers['if-none-match'] !== undefined)) {
      delete headers['if-match'];
      delete headers['if-none-match'];
      headers.authorization = resign(req.method ?? 'GET', req.url ?? '/', headers, unconditionalSecret);
    }
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    // A client that goes away mid-request takes the upstream request with it.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    // Headers go on at once, as they came: the gateway may answer from them alone.
    upstream.flushHeaders();
    req.pipe(upstream);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

/**
 * The Authorization header of a SigV4-signed request after headers were removed: the same
 * credential scope, date and payload hash, signed over the headers it still has.
 */
function resign(method: string, url: string, headers: Record<string, string | string[] | undefined>, secret: string): string {
  const auth = String(headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/([^,]+), ?SignedHeaders=([^,]+), ?Signature=[0-9a-f]+$/.exec(auth);
  if (!m) throw new Error(`not a SigV4 Authorization header: ${auth}`);
  const [, accessKey, scope, signed] = m as unknown as [string, string, string, string];
  const names = signed.split(';').filter((h) => headers[h] !== undefined);
  const [path, query = ''] = url.split(/\?(.*)/s) as [string, string?];
  const strict = (v: string) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const canonicalQuery = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const [k, v] = eq < 0 ? [p, ''] : [p.slice(0, eq), p.slice(eq + 1)];
      return [strict(decodeURIComponent(k)), strict(decodeURIComponent(v))] as const;
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = names.map((h) => `${h}:${String(headers[h]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonical = [method, path, canonicalQuery, canonicalHeaders, names.join(';'), String(headers['x-amz-content-sha256'] ?? 'UNSIGNED-PAYLOAD')].join('\n');
  const [day, region, service] = scope.split('/') as [string, string, string];
  const toSign = ['AWS4-HMAC-SHA256', String(headers['x-amz-date']), scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${secret}`).update(day).digest();
  for (const part of [region, service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${accessKey}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
}

/** The S3 behaviour added in front of s3rver's router: see the module comment. */
function objectSemantics(server: S3rverInstance, conditionalWrites: boolean): KoaMiddleware {
  const tails = new Map<string, Promise<void>>();
  return async (ctx, next) => {
    const slash = ctx.path.indexOf('/', 1);
    if (slash < 0 || slash === ctx.path.length - 1) return next(); // a bucket-level request
    const refuse = (status: number, code: string, message: string) => {
      ctx.status = status;
      ctx.body = { Error: { Code: code, Message: message } };
    };
    if (ctx.method === 'PUT' && Number(ctx.get('content-length') || 0) > MAX_PUT_BYTES) {
      return refuse(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed object size.');
    }
    const uploadId = ctx.query.uploadId === undefined ? undefined : String(ctx.query.uploadId);
    const uploadDir = (b: string) => join(server.store.getResourcePath(b, undefined, 'uploads'), uploadId ?? '');
    if (ctx.method === 'DELETE' && uploadId !== undefined) {
      // AbortMultipartUpload, which s3rver lacks: drop the parts; an unknown upload is a 404.
      const dir = uploadDir(decodeURIComponent(ctx.path.slice(1, slash)));
      if (!/^[0-9a-f]+$/.test(uploadId) || !(await stat(dir).catch(() => null))) {
        return refuse(404, 'NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
      }
      await rm(dir, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if (ctx.query.partNumber !== undefined) {
      const n = Number(ctx.query.partNumber);
      if (!Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) {
        return refuse(400, 'InvalidArgument', `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`);
      }
      return next(); // one part: not the object yet
    }
    const bucket = decodeURIComponent(ctx.path.slice(1, slash));
    const key = decodeURIComponent(ctx.path.slice(slash + 1));
    const id = `${bucket}/${key}`;
    const completes = ctx.method === 'POST' && uploadId !== undefined;
    const writes = ctx.method === 'PUT' || completes;
    let body = Buffer.alloc(0);
    if (writes) {
      // Receive the whole body before taking the key, so a slow or stopped sender holds up nobody:
      // as on S3, readers see the previous version until the write is complete.
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
      body = Buffer.concat(chunks);
      ctx.req = Object.assign(Readable.from([body]), { headers: ctx.req.headers }) as unknown as IncomingMessage;
    }
    const parts = completes ? listedParts(body.toString('utf8')) : [];
    if (completes) {
      for (const p of parts.slice(0, -1)) {
        const size = await stat(join(uploadDir(bucket), String(p.number))).then((s) => s.size, () => null);
        if (size !== null && size < MIN_PART_BYTES) {
          return refuse(400, 'EntityTooSmall', `Your proposed upload is smaller than the minimum allowed size (part ${p.number} is ${size} bytes)`);
        }
      }
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

/** The parts a CompleteMultipartUpload body lists, in its order. */
function listedParts(xml: string): { number: number }[] {
  return [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({ number: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1] ?? '')?.[1]) }));
}

/**
 * Replaces s3rver's CompleteMultipartUpload storage step with S3's: the parts are joined in order
 * into the object (s3rver also hashed the whole object again), and the ETag is S3's multipart
 * form, the md5 of the parts' binary md5s, a dash and the part count.
 */
function completeAsS3(store: S3rverInstance['store']): void {
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    const dir = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    const key = await readFile(join(dir, 'key'), 'utf8');
    const metadata = JSON.parse(await readFile(join(dir, 'metadata'), 'utf8')) as Record<string, unknown>;
    const objectPath = store.getResourcePath(bucket, key, 'object');
    await mkdir(dirname(objectPath), { recursive: true });
    const md5s = createHash('md5');
    let size = 0;
    const out = await open(objectPath, 'w');
    try {
      for (const p of [...parts].sort((x, y) => x.number - y.number)) {
        const part = join(dir, String(p.number));
        md5s.update(Buffer.from((await readFile(`${part}.md5`, 'utf8')).trim(), 'hex'));
        for await (const chunk of createReadStream(part, { highWaterMark: PART_COPY_CHUNK })) {
          await out.write(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
      }
    } finally {
      await out.close();
    }
    const etag = `${md5s.digest('hex')}-${parts.length}`;
    await store.putMetadata(bucket, key, metadata, etag);
    await rm(dir, { recursive: true, force: true });
    return { md5: etag, size };
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
