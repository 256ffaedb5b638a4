/**
 * Errors of `models import`, with stable codes.
 *
 * | code                     | when                                                                    |
 * |--------------------------|-------------------------------------------------------------------------|
 * | KVF_IMPORT_NOT_FOUND     | the checkpoint folder, its config.json, weights or tokenizer.json is missing |
 * | KVF_IMPORT_MALFORMED     | a file cannot be parsed, or a tensor is missing or has the wrong shape  |
 * | KVF_IMPORT_UNSUPPORTED   | the checkpoint is valid but not a model the builder implements (architecture, RoPE scaling, sliding window, dtype, quantization) |
 */
export type ImportErrorCode = 'KVF_IMPORT_NOT_FOUND' | 'KVF_IMPORT_MALFORMED' | 'KVF_IMPORT_UNSUPPORTED';

export class ImportError extends Error {
  override readonly name = 'ImportError';
  constructor(
    readonly code: ImportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
