/**
 * Errors of the needle-in-a-haystack and drift harnesses, with stable codes.
 *
 * | code                   | when                                                                      |
 * |------------------------|---------------------------------------------------------------------------|
 * | KVF_NIAH_BAD_GRID      | a length, depth, chunk size or trial count that no trial can be written for |
 * | KVF_NIAH_TOO_LONG      | a length beyond the model's max_position_embeddings                        |
 * | KVF_NIAH_BAD_POLICY    | a KV policy that cannot run this grid (streaming without or with a too large window) |
 * | KVF_NIAH_PROTOCOL      | the tokenizer cannot express the chosen needle protocol                    |
 * | KVF_DRIFT_BAD_INPUT    | a drift run that cannot be measured (length, chunk size, reference memory) |
 * | KVF_DRIFT_TOO_LONG     | a drift length beyond the model's max_position_embeddings                  |
 */
export type NiahErrorCode = 'KVF_NIAH_BAD_GRID' | 'KVF_NIAH_TOO_LONG' | 'KVF_NIAH_BAD_POLICY' | 'KVF_NIAH_PROTOCOL' | 'KVF_DRIFT_BAD_INPUT' | 'KVF_DRIFT_TOO_LONG';

export class NiahError extends Error {
  override readonly name = 'NiahError';
  constructor(
    readonly code: NiahErrorCode,
    message: string,
  ) {
    super(message);
  }
}
