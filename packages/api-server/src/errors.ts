/**
 * Error catalogue of the REST API and the one handler that turns every error into
 * `{ error: { code, message } }` with the right status.
 *
 * | code                        | status | when                                                         |
 * |-----------------------------|--------|--------------------------------------------------------------|
 * | KVF_API_BAD_REQUEST         | 400    | malformed JSON, spec, URL or multipart body; bad id          |
 * | KVF_API_UNAUTHORIZED        | 401    | no API key, or one not in KVFOLD_API_KEYS                    |
 * | KVF_API_NOT_FOUND           | 404    | unknown route, batch or document result                      |
 * | KVF_API_CONFLICT            | 409    | cancelling a batch that is finalizing or finished            |
 * | KVF_API_BODY_TOO_LARGE      | 413    | JSON body, upload, file count or part count over the limits  |
 * | KVF_API_URI_TOO_LONG        | 414    | a path parameter longer than the router accepts              |
 * | KVF_API_UNSUPPORTED_MEDIA   | 415    | a body that is neither JSON nor multipart/form-data          |
 * | KVF_API_RATE_LIMITED        | 429    | too many requests for this key (or address) in the window,   |
 * |                             |        | or too many wrong API keys from this address (Retry-After)   |
 * | KVF_API_NOT_READY           | 503    | /readyz: Redis or the object store does not answer           |
 * | KVF_API_INTERNAL            | 500    | anything unexpected (logged with its stack)                  |
 *
 * Coded errors of the packages keep their own code: invalid specs and corpora
 * (KVF_CONTRACT_INVALID_INPUT, KVF_JOBS_INVALID_INPUT, KVF_CORPUS_*, KVF_INGEST_*, KVF_ENQUEUE_EMPTY) and a model that is not there
 * (KVF_ENQUEUE_MODEL) answer 400.
 */
import { ContractErrorCode } from '@kvfold/contract';
import { JobsErrorCode } from '@kvfold/jobs';
import { ProducerErrorCode } from '@kvfold/producer';
import { StoreErrorCode } from '@kvfold/storage';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

/** Stable codes of the API. */
export const ApiErrorCode = {
  BadRequest: 'KVF_API_BAD_REQUEST',
  Unauthorized: 'KVF_API_UNAUTHORIZED',
  NotFound: 'KVF_API_NOT_FOUND',
  Conflict: 'KVF_API_CONFLICT',
  BodyTooLarge: 'KVF_API_BODY_TOO_LARGE',
  UriTooLong: 'KVF_API_URI_TOO_LONG',
  UnsupportedMedia: 'KVF_API_UNSUPPORTED_MEDIA',
  RateLimited: 'KVF_API_RATE_LIMITED',
  NotReady: 'KVF_API_NOT_READY',
  Internal: 'KVF_API_INTERNAL',
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

/** An error answered as-is: its status, code and message. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthands for the common answers. */
export const apiErrors = {
  badRequest: (message: string, code: string = ApiErrorCode.BadRequest) => new ApiError(400, code, message),
  notFound: (message: string) => new ApiError(404, ApiErrorCode.NotFound, message),
  conflict: (message: string) => new ApiError(409, ApiErrorCode.Conflict, message),
  tooLarge: (message: string) => new ApiError(413, ApiErrorCode.BodyTooLarge, message),
};

/**
 * Codes of package errors that mean "your input is wrong", from the packages' own constants: every
 * producer code (ingest, corpus, enqueue) but the two the batch routes answer 404 and 409.
 */
export const CLIENT_ERROR_CODES: ReadonlySet<string> = new Set([
  ContractErrorCode.InvalidInput,
  JobsErrorCode.InvalidInput,
  StoreErrorCode.BadKey,
  ...Object.values(ProducerErrorCode).filter((code) => code !== ProducerErrorCode.BatchUnknown && code !== ProducerErrorCode.BatchNotEnded),
]);

/** Fastify's own 4xx codes mapped to ours. */
const FASTIFY_CODES: Readonly<Record<number, ApiErrorCode>> = {
  400: ApiErrorCode.BadRequest,
  401: ApiErrorCode.Unauthorized,
  404: ApiErrorCode.NotFound,
  413: ApiErrorCode.BodyTooLarge,
  414: ApiErrorCode.UriTooLong,
  415: ApiErrorCode.UnsupportedMedia,
  429: ApiErrorCode.RateLimited,
};

/** Status, code and message for any thrown value. */
export function classify(err: unknown): { status: number; code: string; message: string } {
  if (err instanceof ApiError) return { status: err.statusCode, code: err.code, message: err.message };
  const e = err as Partial<FastifyError> & { code?: unknown; message?: string };
  const message = e.message ?? String(err);
  if (typeof e.code === 'string' && CLIENT_ERROR_CODES.has(e.code)) return { status: 400, code: e.code, message };
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    return { status, code: FASTIFY_CODES[status] ?? ApiErrorCode.BadRequest, message: describeFastify(e, message) };
  }
  return { status: 500, code: ApiErrorCode.Internal, message: 'internal error; the server log has the details' };
}

function describeFastify(e: { code?: unknown }, message: string): string {
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'request body is larger than the JSON body limit (KVFOLD_API_BODY_LIMIT); upload large corpora as multipart/form-data';
    case 'FST_REQ_FILE_TOO_LARGE':
      return 'an uploaded file is larger than the upload limit (KVFOLD_API_UPLOAD_LIMIT)';
    case 'FST_ERR_BAD_URL':
      return 'the request path is not a valid URL (bad percent-encoding); encode it with encodeURIComponent';
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return 'a path parameter is longer than the router accepts; batch ids are b + 32 hex chars, document ids 64 hex chars';
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return `too many parts in the upload (${message}); raise KVFOLD_API_UPLOAD_MAX_FILES or upload an archive`;
    default:
      return message;
  }
}

/** The app's error handler: one JSON shape, server faults logged with their stack. */
export function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, code, message } = classify(err);
  if (status >= 500) request.log.error({ err }, 'request failed');
  else request.log.info({ code, status }, message);
  return reply.status(status).send({ error: { code, message } });
}

/** Answer for routes that do not exist. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.status(404).send({ error: { code: ApiErrorCode.NotFound, message: `no route ${request.method} ${request.url.split('?')[0]}` } });
}
