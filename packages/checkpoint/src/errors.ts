/**
 * The checkpoint error catalogue: every error this package throws carries a stable `code`.
 *
 * | code                    | when                                                                |
 * |-------------------------|---------------------------------------------------------------------|
 * | KVF_CKPT_CORRUPT        | a segment or manifest fails its checksum, is truncated or malformed |
 * | KVF_CKPT_VERSION        | a segment or manifest was written by a newer format version         |
 * | KVF_CKPT_FINGERPRINT    | the stored checkpoint was made with other settings (`FingerprintMismatchError`) |
 * | KVF_CKPT_FENCED         | a newer writer took the document over (`CheckpointFencedError`)     |
 * | KVF_CKPT_BAD_STATE      | a state that does not fit the writer (layout, shrinking rows, NaN in int8) |
 * | KVF_CKPT_WRITER_CLOSED  | a call on a writer after `finalize()`                               |
 */

export const CheckpointErrorCode = {
  Corrupt: 'KVF_CKPT_CORRUPT',
  Version: 'KVF_CKPT_VERSION',
  Fingerprint: 'KVF_CKPT_FINGERPRINT',
  Fenced: 'KVF_CKPT_FENCED',
  BadState: 'KVF_CKPT_BAD_STATE',
  WriterClosed: 'KVF_CKPT_WRITER_CLOSED',
} as const;

export type CheckpointErrorCode = (typeof CheckpointErrorCode)[keyof typeof CheckpointErrorCode];

/** Base class of every checkpoint error; branch on `code` or on the subclasses below. */
export class CheckpointError extends Error {
  readonly code: CheckpointErrorCode;

  constructor(code: CheckpointErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CheckpointError';
    this.code = code;
  }
}

/** The fingerprint fields a resume must match. */
export type FingerprintField = 'model' | 'tokenizer' | 'chunkSize' | 'policy' | 'codec' | 'layout';

/** The stored checkpoint was made with different settings; resuming would give wrong results. */
export class FingerprintMismatchError extends CheckpointError {
  readonly field: FingerprintField;
  readonly stored: string;
  readonly expected: string;

  constructor(where: string, field: FingerprintField, stored: string, expected: string) {
    super(
      'KVF_CKPT_FINGERPRINT',
      `checkpoint ${where} was made with ${field} ${stored}, this run uses ${expected}; ` +
        'it cannot be resumed (start over with the fresh option, which discards it)',
    );
    this.name = 'FingerprintMismatchError';
    this.field = field;
    this.stored = stored;
    this.expected = expected;
  }
}

/** A newer writer owns the document; this writer must stop (its work is superseded, not lost). */
export class CheckpointFencedError extends CheckpointError {
  readonly ownGeneration: number;
  readonly storedGeneration: number | null;

  constructor(where: string, ownGeneration: number, storedGeneration: number | null, options?: { cause?: unknown }) {
    const now = storedGeneration === null ? 'the manifest is gone' : `it is now at generation ${storedGeneration}`;
    super(
      'KVF_CKPT_FENCED',
      `checkpoint ${where} was taken over: this writer holds generation ${ownGeneration}, ${now} ` +
        '(another attempt owns the document; stop this one without committing)',
      options,
    );
    this.name = 'CheckpointFencedError';
    this.ownGeneration = ownGeneration;
    this.storedGeneration = storedGeneration;
  }
}

/** Factories for the remaining codes, so messages stay uniform. */
export const checkpointErrors = {
  corrupt: (name: string, why: string, cause?: unknown) =>
    new CheckpointError('KVF_CKPT_CORRUPT', `${name} is corrupt: ${why}`, cause === undefined ? undefined : { cause }),
  newerVersion: (name: string, found: number, supported: number) =>
    new CheckpointError(
      'KVF_CKPT_VERSION',
      `${name} has format version ${found}, this build reads up to ${supported} (upgrade KV-Fold, or start over with the fresh option)`,
    ),
  badState: (why: string) => new CheckpointError('KVF_CKPT_BAD_STATE', why),
  closed: (where: string) =>
    new CheckpointError('KVF_CKPT_WRITER_CLOSED', `checkpoint writer of ${where} is finalized; open a new one`),
};
