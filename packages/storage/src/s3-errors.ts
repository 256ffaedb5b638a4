/**
 * Maps AWS SDK errors onto the storage catalogue, so callers never branch on SDK internals.
 */
import type { ByteRange } from './object-store.ts';
import { ObjectNotFoundError, PreconditionFailedError, type StoreError, storeErrors } from './errors.ts';

/** Where an SDK call went, for messages. */
export interface S3ErrorContext {
  readonly uri: string;
  readonly endpoint: string;
  readonly bucket: string;
  /** The store-relative key, when the call was about one. */
  readonly key?: string;
  /** What was attempted, e.g. "writing segments/0-8.kvf". */
  readonly what: string;
  readonly range?: ByteRange;
}

/** Node and undici error codes that mean "nobody answered". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

const CREDENTIAL_NAMES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'ExpiredToken',
  'InvalidToken',
  'CredentialsProviderError',
]);

/** Translates one thrown SDK value into a StoreError. */
export function mapS3Error(err: unknown, ctx: S3ErrorContext): StoreError {
  const e = err as {
    name?: string;
    code?: string;
    Code?: string;
    cause?: { code?: string };
    $metadata?: { httpStatusCode?: number };
  };
  const name = e?.name ?? '';
  const status = e?.$metadata?.httpStatusCode;
  const code = e?.code ?? e?.cause?.code ?? '';
  const key = ctx.key ?? '';
  if (name === 'NoSuchBucket') return storeErrors.noBucket(ctx.uri, ctx.bucket, err);
  if (name === 'NoSuchKey' || (status === 404 && ctx.key !== undefined && name !== 'NoSuchUpload')) {
    return new ObjectNotFoundError(ctx.uri, key, { cause: err });
  }
  // 409 ConditionalRequestConflict: S3 saw a concurrent conditional write to the same key.
  if (name === 'PreconditionFailed' || status === 412 || name === 'ConditionalRequestConflict') {
    return new PreconditionFailedError(ctx.uri, key, `the backend answered ${name || status}`, { cause: err });
  }
  if ((name === 'InvalidRange' || status === 416) && ctx.range) {
    return storeErrors.badRange(ctx.uri, key, ctx.range.start, ctx.range.end);
  }
  if (CREDENTIAL_NAMES.has(name) || status === 403 || status === 401) {
    return storeErrors.credentials(ctx.uri, err);
  }
  if (NETWORK_CODES.has(code) || name === 'TimeoutError' || name === 'AbortError' || name === 'RequestTimeout') {
    return storeErrors.unreachable(ctx.uri, ctx.endpoint, err);
  }
  // Anything else: say what the server answered (its S3 error code and HTTP status) and where.
  const answered = status ? `the server at ${ctx.endpoint} answered HTTP ${status}${name ? ` ${name}` : ''} for bucket ${ctx.bucket}` : `no answer from ${ctx.endpoint} for bucket ${ctx.bucket}`;
  return storeErrors.io(ctx.uri, `${ctx.what} (${answered})`, err);
}
