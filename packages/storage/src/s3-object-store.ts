/**
 * S3ObjectStore: objects in an S3-protocol bucket (AWS S3, MinIO, R2, s3rver) under a key prefix.
 *
 * Every put goes through lib-storage's `Upload`, which buffers the body into parts: a body smaller
 * than one part becomes one PutObject with a known length and a checksum header, a larger one a
 * multipart upload of `partSize` parts, `queueSize` in flight. A streamed body is never sent as
 * one unsized PutObject: the SDK would then use aws-chunked encoding with a trailing checksum,
 * which S3-compatible servers that do not speak it (s3rver 3.7 is one) store verbatim, framing and
 * all. The SDK's standard retry mode (exponential backoff with jitter) retries throttling, 5xx and
 * network errors up to `maxAttempts`.
 *
 * Memory per put is bounded by the parts, not the body: lib-storage holds about `queueSize + 1`
 * parts at once. When the body's size is known (`PutOptions.size`), the part size grows as needed
 * to keep the upload within S3's 10,000 parts (`partSizeFor`), so a file of any size goes up.
 *
 * Conditional writes are learned, not assumed: before its first conditional put a store probes the
 * backend once (`probeConditionalWrites`) with a scratch object under its prefix, and learns
 * whether If-None-Match: * is enforced, whether If-Match compares the etag as S3 gives it (quoted)
 * or only its bare hex (Ceph RGW before 17 refuses the quoted form), and whether
 * CompleteMultipartUpload honours the conditions. It then sends If-Match in the form the backend
 * compares, and sends a conditional put as one PutObject, never a multipart upload, where
 * CompleteMultipartUpload ignores conditions. A backend that enforces neither If-None-Match nor
 * If-Match (or only one of them) is refused at that first conditional put, unless it was declared
 * with `conditionalWrites: false`.
 */
import {
  AbortMultipartUploadCommand,
  type ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  type ListObjectsCommandOutput,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { constants as bufferConstants } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { bodyChunks, bodyStream, collect } from './body.ts';
import { ObjectNotFoundError, PreconditionFailedError, StoreError, storeErrors } from './errors.ts';
import { assertKey, assertRange } from './keys.ts';
import type { Body, ByteRange, ObjectInfo, ObjectStore, PutOptions } from './object-store.ts';
import { mapS3Error, type S3ErrorContext } from './s3-errors.ts';

/** Connection settings; the apps read them from their environment and pass them in. */
export interface S3Settings {
  /** e.g. `http://127.0.0.1:9000` for MinIO; omitted for AWS. */
  readonly endpoint?: string;
  /** Default `us-east-1` (R2 wants `auto`). */
  readonly region?: string;
  /** Path-style URLs (`host/bucket/key`), needed by MinIO and s3rver. Default false. */
  readonly forcePathStyle?: boolean;
  /** Omitted: the SDK's default provider chain (instance role, shared config files, ...). */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /** Total attempts per request, including the first. Default 3 (the SDK's standard mode). */
  readonly maxAttempts?: number;
  /** Multipart part size in bytes, at least 5 MiB (S3's minimum part). Default 8 MiB. */
  readonly partSize?: number;
  /** Parts uploaded concurrently by one put. Default 4. */
  readonly queueSize?: number;
  /** Checksum sent with every part and verified by the server. Default CRC32. */
  readonly checksumAlgorithm?: 'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256' | 'none';
  /**
   * Whether the backend enforces If-None-Match / If-Match on PutObject and
   * CompleteMultipartUpload. AWS S3 does (since 2024); s3rver 3.7 ignores both headers. When
   * false, puts with a condition are checked by a HEAD first, which narrows but does not close the
   * race between writers. When true, the backend is probed at the first conditional put, and one
   * that turns out not to enforce them is refused. Default true.
   */
  readonly conditionalWrites?: boolean;
  /** `check()` gives up after this long, with no retries (ms). Default 5 s. */
  readonly probeTimeoutMs?: number;
}

/** S3's minimum part size (except the last part). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's most parts in one multipart upload. */
export const MAX_PARTS = 10_000;
/** Part sizes are rounded up to whole MiB. */
const MiB = 1024 * 1024;

/**
 * The part size a put of `size` bytes uses: `partSize`, or the smallest whole-MiB size that keeps
 * the upload within MAX_PARTS parts when `partSize` would need more.
 */
export function partSizeFor(size: number | undefined, partSize: number): number {
  if (size === undefined || size <= partSize * MAX_PARTS) return partSize;
  return Math.ceil(size / MAX_PARTS / MiB) * MiB;
}
const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
/** The largest Buffer Node allocates (4 GiB on 64-bit Node 20). */
const MAX_LENGTH = bufferConstants.MAX_LENGTH;
const DEFAULT_QUEUE_SIZE = 4;
const DEFAULT_MAX_ATTEMPTS = 3;
const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

/** What `probeConditionalWrites` found a backend to enforce. */
export interface ConditionalWriteSupport {
  /** PutObject with If-None-Match: * refuses a key that exists. */
  readonly ifNoneMatch: boolean;
  /**
   * The form of the etag in If-Match that PutObject compares with the object's: `quoted` as S3
   * gives it (`"<hex>"`), `bare` hex (Ceph RGW before 17), or null when If-Match is ignored.
   */
  readonly ifMatch: 'quoted' | 'bare' | null;
  /** CompleteMultipartUpload with If-None-Match: * refuses a key that exists. */
  readonly multipart: boolean;
}

/** An etag without quotes or weak marker. */
const bareEtag = (etag: string) => etag.replace(/^W\//, '').replace(/"/g, '');

/** A body that must be `size` bytes long: announced sizes are checked, never sent as Content-Length. */
function exactLength(body: Uint8Array, size: number | undefined): Uint8Array {
  if (size !== undefined && body.byteLength !== size) throw new Error(`the body is ${body.byteLength} bytes, not the ${size} announced`);
  return body;
}

/**
 * Passes a streamed body through, failing once it proves longer or shorter than `size` (a file
 * that changed while it was read). Not sent as a Content-Length: a short body would then leave the
 * request waiting for bytes that never come.
 */
async function* exactLengthChunks(body: Body, size: number): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of bodyChunks(body)) {
    seen += chunk.byteLength;
    if (seen > size) throw new Error(`the body is longer than the ${size} bytes announced (did the file change while it was read?)`);
    yield chunk;
  }
  if (seen !== size) throw new Error(`the body ended after ${seen} of the ${size} bytes announced (did the file change while it was read?)`);
}

/** An ObjectStore over one bucket and key prefix. */
export class S3ObjectStore implements ObjectStore {
  readonly uri: string;
  readonly conditionalWrites: boolean;
  readonly bucket: string;
  /** Key prefix inside the bucket: '' or ending in '/'. */
  readonly prefix: string;
  readonly #client: S3Client;
  readonly #probe: S3Client;
  readonly #endpoint: string;
  readonly #partSize: number;
  readonly #queueSize: number;
  readonly #checksum: ChecksumAlgorithm | undefined;
  readonly #probeTimeoutMs: number;
  /** The probe of conditional writes, run once at the first conditional put. */
  #conditions: Promise<ConditionalWriteSupport> | undefined;

  constructor(bucket: string, prefix: string, settings: S3Settings = {}) {
    this.bucket = bucket;
    this.prefix = prefix.replace(/^\/+|\/+$/g, '') === '' ? '' : `${prefix.replace(/^\/+|\/+$/g, '')}/`;
    this.uri = `s3://${bucket}/${this.prefix}`;
    this.conditionalWrites = settings.conditionalWrites ?? true;
    this.#endpoint = settings.endpoint ?? `the AWS endpoint of region ${settings.region ?? 'us-east-1'}`;
    this.#partSize = Math.max(MIN_PART_SIZE, settings.partSize ?? DEFAULT_PART_SIZE);
    this.#queueSize = Math.max(1, settings.queueSize ?? DEFAULT_QUEUE_SIZE);
    const algorithm = settings.checksumAlgorithm ?? 'CRC32';
    this.#checksum = algorithm === 'none' ? undefined : (algorithm as ChecksumAlgorithm);
    this.#probeTimeoutMs = settings.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    const base = {
      region: settings.region ?? 'us-east-1',
      forcePathStyle: settings.forcePathStyle ?? false,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(settings.credentials ? { credentials: settings.credentials } : {}),
      requestChecksumCalculation: algorithm === 'none' ? ('WHEN_REQUIRED' as const) : ('WHEN_SUPPORTED' as const),
    };
    this.#client = new S3Client({ ...base, maxAttempts: settings.maxAttempts ?? DEFAULT_MAX_ATTEMPTS });
    this.#probe = new S3Client({ ...base, maxAttempts: 1 });
  }

  /**
   * One HeadBucket, no retries, short timeout: fails fast on a wrong endpoint or credentials. Then,
   * where the store relies on conditional writes, the probe of them (once): a backend that does not
   * enforce them is refused here, at start, not at the first checkpoint.
   */
  async check(): Promise<void> {
    await this.#checkBucket();
    if (this.conditionalWrites) await this.#enforcedConditions();
  }

  async #checkBucket(): Promise<void> {
    try {
      await this.#probe.send(new HeadBucketCommand({ Bucket: this.bucket }), {
        abortSignal: AbortSignal.timeout(this.#probeTimeoutMs),
      });
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      // HeadBucket has no body, so a missing bucket is a bare 404.
      const e = status === 404 ? Object.assign(new Error('NoSuchBucket'), { name: 'NoSuchBucket' }) : err;
      throw mapS3Error(e, this.#ctx('checking the bucket'));
    }
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<{ etag: string }> {
    const ctx = this.#ctx(`writing ${key}`, key);
    assertKey(this.uri, key);
    const conditional = options.ifNoneMatch !== undefined || options.ifMatch !== undefined;
    if (!this.conditionalWrites) await this.#precheck(key, options);
    const support = this.conditionalWrites && conditional ? await this.#enforcedConditions() : null;
    let size = options.size ?? (body instanceof Uint8Array ? body.byteLength : undefined);
    let partSize = partSizeFor(size, this.#partSize);
    if (support && !support.multipart) {
      // One PutObject: the backend would complete a multipart upload whatever its conditions.
      if (!(body instanceof Uint8Array)) {
        if (size !== undefined && size > MAX_LENGTH) throw storeErrors.tooLarge(this.uri, key, size, MAX_LENGTH);
        body = await collect(options.size === undefined ? body : exactLengthChunks(body, options.size)).catch((err: unknown) => {
          throw mapS3Error(err, ctx);
        });
        size = body.byteLength;
      }
      partSize = Math.max(this.#partSize, body.byteLength);
    }
    const ifMatch = options.ifMatch === undefined || options.ifMatch === '*' || support?.ifMatch !== 'bare' ? options.ifMatch : bareEtag(options.ifMatch);
    try {
      const upload = new Upload({
        client: this.#client,
        partSize,
        queueSize: this.#queueSize,
        leavePartsOnError: false,
        params: {
          Bucket: this.bucket,
          Key: this.#full(key),
          Body: body instanceof Uint8Array ? exactLength(body, options.size) : bodyStream(options.size === undefined ? body : exactLengthChunks(body, options.size)),
          ...(options.contentType ? { ContentType: options.contentType } : {}),
          ...(this.#checksum ? { ChecksumAlgorithm: this.#checksum } : {}),
          ...(options.ifNoneMatch ? { IfNoneMatch: options.ifNoneMatch } : {}),
          ...(ifMatch !== undefined ? { IfMatch: ifMatch } : {}),
        },
      });
      const done = await upload.done();
      // Some backends (Ceph RGW 16) answer CompleteMultipartUpload without an ETag: read it back.
      return { etag: done.ETag || ((await this.head(key))?.etag ?? '') };
    } catch (err) {
      const mapped = mapS3Error(err, ctx);
      // S3 answers If-Match on a missing key with 404 NoSuchKey: for the caller, a failed condition.
      if (mapped instanceof ObjectNotFoundError && options.ifMatch !== undefined) {
        throw new PreconditionFailedError(this.uri, key, `expected etag ${options.ifMatch}, it does not exist`, { cause: err });
      }
      throw mapped;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    return (await this.#getObject(key, range)).body;
  }

  async getBytes(key: string, range?: ByteRange): Promise<Uint8Array> {
    const { body, length } = await this.#getObject(key, range);
    try {
      if (length === undefined) return await collect(body);
      if (length > MAX_LENGTH) throw storeErrors.tooLarge(this.uri, key, length, MAX_LENGTH);
      // One buffer of the announced length, filled as the body streams in: no second copy.
      const out = Buffer.allocUnsafe(length);
      let at = 0;
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        if (at + chunk.length > length) throw new Error(`the body is longer than its Content-Length ${length}`);
        out.set(chunk, at);
        at += chunk.length;
      }
      if (at !== length) throw new Error(`the body ended after ${at} of its ${length} bytes`);
      return out;
    } catch (err) {
      body.destroy();
      if (err instanceof StoreError) throw err;
      throw mapS3Error(err, this.#ctx(`reading ${key}`, key));
    }
  }

  /** One GetObject: the body stream and its length (as the server announced it). */
  async #getObject(key: string, range?: ByteRange): Promise<{ body: Readable; length: number | undefined }> {
    assertKey(this.uri, key);
    assertRange(this.uri, key, range);
    if (range && range.end === range.start) return { body: Readable.from([]), length: 0 };
    try {
      const out = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.#full(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end === undefined ? '' : range.end - 1}` } : {}),
        }),
      );
      return { body: out.Body as Readable, length: out.ContentLength };
    } catch (err) {
      throw mapS3Error(err, { ...this.#ctx(`reading ${key}`, key), ...(range ? { range } : {}) });
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    assertKey(this.uri, key);
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#full(key) }));
      return {
        key,
        size: out.ContentLength ?? 0,
        etag: out.ETag ?? '',
        ...(out.LastModified ? { lastModified: out.LastModified } : {}),
      };
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) return null;
      throw mapS3Error(err, this.#ctx(`reading metadata of ${key}`, key));
    }
  }

  /**
   * ListObjects (v1) paged by `Marker` = the last key of the previous page: the same listing on
   * S3, MinIO and R2. Not v2: s3rver builds v2 continuation tokens with DES, which OpenSSL 3 (Node
   * 18+) no longer offers, so any v2 listing longer than one page fails there with a 500.
   */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let marker: string | undefined;
    for (;;) {
      let page: ListObjectsCommandOutput;
      try {
        page = await this.#client.send(
          new ListObjectsCommand({
            Bucket: this.bucket,
            Prefix: this.#full(prefix),
            ...(marker ? { Marker: marker } : {}),
          }),
        );
      } catch (err) {
        throw mapS3Error(err, this.#ctx(`listing ${prefix}`));
      }
      const contents = page.Contents ?? [];
      for (const o of contents) {
        if (!o.Key) continue;
        yield {
          key: o.Key.slice(this.prefix.length),
          size: o.Size ?? 0,
          etag: o.ETag ?? '',
          ...(o.LastModified ? { lastModified: o.LastModified } : {}),
        };
      }
      marker = contents.at(-1)?.Key;
      if (!page.IsTruncated || !marker) return;
    }
  }

  async delete(key: string): Promise<void> {
    assertKey(this.uri, key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#full(key) }));
    } catch (err) {
      throw mapS3Error(err, this.#ctx(`deleting ${key}`, key));
    }
  }

  /** Closes the SDK's sockets. */
  destroy(): void {
    this.#client.destroy();
    this.#probe.destroy();
  }

  /**
   * Finds out which conditional writes the backend enforces, with a scratch object under the
   * prefix (`.kvfold-probe-<random>`, deleted again): a plain PutObject, then PutObject with
   * If-None-Match: *, with If-Match of its etag quoted and bare and with a wrong If-Match, and a
   * one-part multipart upload completed with If-None-Match: *. About ten requests; a store runs
   * it once, at its first conditional put (when `conditionalWrites`), and remembers the answer.
   */
  async probeConditionalWrites(): Promise<ConditionalWriteSupport> {
    const Bucket = this.bucket;
    const Key = `${this.prefix}.kvfold-probe-${randomBytes(8).toString('hex')}`;
    const ctx = this.#ctx('probing conditional writes', Key.slice(this.prefix.length));
    const body = new TextEncoder().encode('kvfold conditional write probe');
    /** True when the backend refused the write with 412 (or 404 for If-Match on a missing key). */
    const refused = async (send: () => Promise<unknown>) => {
      try {
        await send();
        return false;
      } catch (err) {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 412 || (err as Error).name === 'PreconditionFailed') return true;
        throw err;
      }
    };
    const put = (conditions: { IfNoneMatch?: string; IfMatch?: string } = {}) =>
      this.#client.send(new PutObjectCommand({ Bucket, Key, Body: body, ...conditions }));
    try {
      const etag = (await put()).ETag ?? '';
      const ifNoneMatch = await refused(() => put({ IfNoneMatch: '*' }));
      let ifMatch: ConditionalWriteSupport['ifMatch'] = null;
      for (const form of ['quoted', 'bare'] as const) {
        const given = form === 'quoted' ? `"${bareEtag(etag)}"` : bareEtag(etag);
        if (!(await refused(() => put({ IfMatch: given })))) {
          ifMatch = form;
          break;
        }
      }
      // A backend that ignores If-Match lets a wrong etag through too.
      if (ifMatch !== null) {
        const wrong = '0'.repeat(32);
        if (!(await refused(() => put({ IfMatch: ifMatch === 'quoted' ? `"${wrong}"` : wrong })))) ifMatch = null;
      }
      const { UploadId } = await this.#client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
      let multipart = false;
      try {
        const part = await this.#client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: body }));
        multipart = await refused(() =>
          this.#client.send(
            new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }),
          ),
        );
      } finally {
        if (multipart) await this.#client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {});
      }
      return { ifNoneMatch, ifMatch, multipart };
    } catch (err) {
      throw mapS3Error(err, ctx);
    } finally {
      await this.#client.send(new DeleteObjectCommand({ Bucket, Key })).catch(() => {});
    }
  }

  /** The probe's answer, run once; refuses a backend that does not enforce conditional writes. */
  async #enforcedConditions(): Promise<ConditionalWriteSupport> {
    this.#conditions ??= this.probeConditionalWrites().catch((err: unknown) => {
      this.#conditions = undefined; // a failed probe is tried again by the next conditional put
      throw err;
    });
    const support = await this.#conditions;
    const lacks = [...(support.ifNoneMatch ? [] : ['If-None-Match: *']), ...(support.ifMatch ? [] : ['If-Match'])];
    if (lacks.length > 0) {
      throw new StoreError(
        'KVF_STORE_NO_CONDITIONAL_WRITES',
        `store ${this.uri} (bucket ${this.bucket} at ${this.#endpoint}) does not enforce conditional writes: PutObject ignores ${lacks.join(' and ')}, ` +
          'which checkpoint fencing relies on; use a server that enforces them, or set KVFOLD_S3_CONDITIONAL_WRITES=false (conditionalWrites: false) to use it anyway, ' +
          'with a HEAD before each conditional write, which narrows but does not close the race between writers',
      );
    }
    return support;
  }

  /** Best-effort condition check for backends that ignore conditional headers (not atomic). */
  async #precheck(key: string, options: PutOptions): Promise<void> {
    if (!options.ifNoneMatch && options.ifMatch === undefined) return;
    const current = await this.head(key);
    if (options.ifNoneMatch === '*' && current) {
      throw new PreconditionFailedError(this.uri, key, 'the key already exists');
    }
    if (options.ifMatch !== undefined && current?.etag !== options.ifMatch) {
      const found = current ? `its etag is ${current.etag}` : 'it does not exist';
      throw new PreconditionFailedError(this.uri, key, `expected etag ${options.ifMatch}, ${found}`);
    }
  }

  #full(key: string): string {
    return `${this.prefix}${key}`;
  }

  #ctx(what: string, key?: string): S3ErrorContext {
    return { uri: this.uri, endpoint: this.#endpoint, bucket: this.bucket, what, ...(key !== undefined ? { key } : {}) };
  }
}
