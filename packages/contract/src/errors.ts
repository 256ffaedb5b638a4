/**
 * Error catalogue of @kvfold/contract.
 *
 * | code                       | when                                          |
 * |----------------------------|-----------------------------------------------|
 * | KVF_CONTRACT_INVALID_INPUT | a batch spec, job or result failed its schema |
 */

/** Stable codes of the errors thrown by @kvfold/contract. */
export const ContractErrorCode = {
  InvalidInput: 'KVF_CONTRACT_INVALID_INPUT',
} as const;

export type ContractErrorCode = (typeof ContractErrorCode)[keyof typeof ContractErrorCode];

/** A value that failed its schema; `message` names the field and what was wrong. */
export class ContractError extends Error {
  override readonly name = 'ContractError';
  constructor(
    readonly code: ContractErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
