/**
 * @kvfold/storage: the ObjectStore port and its filesystem and S3 adapters.
 */
export type { Body, ByteRange, ObjectInfo, ObjectStore, PutOptions } from './object-store.ts';
export {
  describe as describeError,
  ObjectNotFoundError,
  PreconditionFailedError,
  StoreError,
  StoreErrorCode,
  storeErrors,
} from './errors.ts';
export { FsObjectStore, type FsStoreOptions } from './fs-object-store.ts';
export { MAX_PARTS, MIN_PART_SIZE, partSizeFor, S3ObjectStore, type S3Settings } from './s3-object-store.ts';
export { checkStore, type OpenStoreOptions, openStore, parseStoreUri, type StoreLocation } from './open-store.ts';
export { collect } from './body.ts';
export { readOptional } from './read-optional.ts';
