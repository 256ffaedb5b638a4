/**
 * Turns zod issues into one readable line per problem, each naming the field it concerns.
 */
import type { z } from 'zod';
import { ContractError, ContractErrorCode } from './errors.ts';

/** Renders an issue path as `a.b[2].c`; the empty path is `(root)`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

/**
 * Formats a zod error as `field: message` lines joined by `; `,
 * e.g. `chunkSize: must be an integer >= 1`. Unknown keys are named too.
 */
export function formatZodError(error: z.core.$ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        const where = issue.path.length > 0 ? `${formatIssuePath(issue.path)}.` : '';
        return issue.keys.map((key) => `${where}${key}: unknown field`).join('; ');
      }
      return `${formatIssuePath(issue.path)}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Parses `value` with `schema`, throwing a {@link ContractError} (`KVF_CONTRACT_INVALID_INPUT`) whose message
 * names `what` and every bad field.
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ContractError(ContractErrorCode.InvalidInput, `invalid ${what}: ${formatZodError(result.error)}`, {
    cause: result.error,
  });
}
