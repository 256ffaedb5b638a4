/**
 * Errors of @kvfold/onnx, with stable codes.
 *
 * | code                     | when                                                                |
 * |--------------------------|---------------------------------------------------------------------|
 * | KVF_MODEL_NOT_FOUND      | the model folder or one of its required files is missing            |
 * | KVF_MODEL_MALFORMED      | a file of the folder cannot be parsed (config, tokenizer, ONNX)     |
 * | KVF_MODEL_NO_CHAT_TEMPLATE | a chat was asked of a model whose tokenizer_config has no chat_template |
 * | KVF_MODEL_NOT_A_DECODER  | the graph's inputs/outputs are not a decoder with past_key_values   |
 * | KVF_MODEL_DEVICE         | the requested execution provider is unavailable                     |
 * | KVF_MODEL_KV_WIDTH       | the cache width asked for cannot be held with this export or device |
 * | KVF_MODEL_RUNTIME        | ONNX Runtime failed while running a step                            |
 * | KVF_MODEL_CLOSED         | a step was asked of a model that was closed                         |
 */
export const ModelErrorCode = {
  NotFound: 'KVF_MODEL_NOT_FOUND',
  Malformed: 'KVF_MODEL_MALFORMED',
  NoChatTemplate: 'KVF_MODEL_NO_CHAT_TEMPLATE',
  NotADecoder: 'KVF_MODEL_NOT_A_DECODER',
  Device: 'KVF_MODEL_DEVICE',
  KvWidth: 'KVF_MODEL_KV_WIDTH',
  Runtime: 'KVF_MODEL_RUNTIME',
  Closed: 'KVF_MODEL_CLOSED',
} as const;

export type ModelErrorCode = (typeof ModelErrorCode)[keyof typeof ModelErrorCode];

export class ModelError extends Error {
  override readonly name = 'ModelError';
  constructor(
    readonly code: ModelErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
