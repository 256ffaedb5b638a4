/**
 * Test support: a real S3-protocol server (s3rver) on 127.0.0.1, a random free port and a temp
 * directory, for this package's tests and other packages' (`@kvfold/storage/testing`).
 *
 * What s3rver 3.7 does and does not do, verified against it: it stores PutObject bodies with a
 * known length and multipart uploads byte-exactly and accepts checksum headers; it ignores
 * If-None-Match / If-Match on writes (hence `conditionalWrites: false` in `settings`); it rejects
 * an unknown access key id (403 InvalidAccessKeyId) but does not verify SigV4 signatures, so a
 * wrong secret with the right key id is accepted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3ObjectStore, type S3Settings } from './s3-object-store.ts';

/** The slice of s3rver's (untyped, CommonJS) API used here. */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer: import('node:http').Server;
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

/** Starts s3rver with one empty bucket. */
export async function startTestS3Server(options: { bucket?: string } = {}): Promise<TestS3Server> {
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
    conditionalWrites: false,
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
