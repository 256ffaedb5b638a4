/**
 * Error catalogue of @kvfold/jobs: every error this package throws carries one of these stable codes.
 *
 * | code                     | when                                                        |
 * |--------------------------|-------------------------------------------------------------|
 * | KVF_JOBS_INVALID_INPUT   | a registry value or argument is malformed                   |
 * | KVF_ENV_INVALID          | one or more environment variables are missing or malformed  |
 * | KVF_REDIS_URL_INVALID    | a Redis URL cannot be parsed                                |
 * | KVF_REDIS_UNREACHABLE    | Redis did not answer PING in time at start-up               |
 * | KVF_BATCH_NOT_FOUND      | the registry holds no batch with that id                    |
 * | KVF_BATCH_STATE          | a batch's stored state is unknown or a move is not allowed  |
 * | KVF_BATCH_CANCELLED      | a worker stopped a document because its batch was cancelled |
 */

/** Stable codes of the errors thrown by @kvfold/jobs. */
export const JobsErrorCode = {
  InvalidInput: 'KVF_JOBS_INVALID_INPUT',
  EnvInvalid: 'KVF_ENV_INVALID',
  RedisUrlInvalid: 'KVF_REDIS_URL_INVALID',
  RedisUnreachable: 'KVF_REDIS_UNREACHABLE',
  BatchNotFound: 'KVF_BATCH_NOT_FOUND',
  BatchState: 'KVF_BATCH_STATE',
  BatchCancelled: 'KVF_BATCH_CANCELLED',
} as const;

export type JobsErrorCode = (typeof JobsErrorCode)[keyof typeof JobsErrorCode];

/** An error a caller can branch on by `code`. */
export class JobsError extends Error {
  override readonly name = 'JobsError';
  constructor(
    readonly code: JobsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
