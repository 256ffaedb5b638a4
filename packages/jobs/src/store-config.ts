/** Store settings from the apps' parsed environment: the one mapping of KVFOLD_S3_* onto the S3 adapter. */
import type { Env } from './env.ts';
import type { OpenStoreOptions } from '@kvfold/storage';

export function storeOptionsFromEnv(env: Env): OpenStoreOptions {
  return {
    s3: {
      ...(env.KVFOLD_S3_ENDPOINT ? { endpoint: env.KVFOLD_S3_ENDPOINT } : {}),
      region: env.KVFOLD_S3_REGION,
      forcePathStyle: env.KVFOLD_S3_FORCE_PATH_STYLE,
      conditionalWrites: env.KVFOLD_S3_CONDITIONAL_WRITES,
      ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } }
        : {}),
    },
  };
}
