/**
 * Small reusable zod field builders whose messages read well after a field name.
 */
import { z } from 'zod';

/** An integer >= `min`, with one message for both "not an integer" and "too small". */
export function intAtLeast(min: number) {
  const message = `must be an integer >= ${min}`;
  return z.int({ error: message }).min(min, { error: message });
}

/** A lowercase hex sha256 digest. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, { error: 'must be a lowercase hex sha256 (64 chars)' });

/** A non-empty string. */
export const NonEmpty = z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' });
