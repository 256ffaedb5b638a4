/**
 * The contract loads alone: every module `@kvfold/contract` reaches imports only zod, Node
 * built-ins and other contract modules, never BullMQ, ioredis or the store's S3 client.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

test('the contract reaches only zod, node: built-ins and itself', () => {
  const seen = new Set<string>();
  const outside = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(new URL(file, import.meta.url), 'utf8');
    for (const [, spec] of source.matchAll(/^(?:import|export)\s[^;]*?from '([^']+)';/gms)) {
      if (spec?.startsWith('./')) visit(spec);
      else if (spec && spec !== 'zod' && !spec.startsWith('node:')) outside.add(`${file} imports ${spec}`);
    }
  };
  visit('./index.ts');
  assert.ok(seen.size > 8, `reached ${[...seen].join(', ')}`);
  assert.deepEqual([...outside], []);
});
