/**
 * `kvfold --help` loads only the command tree: no command's packages are imported until it runs.
 * The compiled CLI's static import graph from dist/main.mjs is walked (the chunks it imports, and
 * theirs), and the constants the command tree writes out are checked against the packages that own them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_REFERENCE_LIMIT_MIB as BENCH_REFERENCE_LIMIT_MIB } from '@kvfold/bench';
import { IMPORT_DTYPES, MODEL_NAMES as ZOO_MODEL_NAMES } from '@kvfold/model-zoo';
import { DEFAULT_REFERENCE_LIMIT_MIB } from './commands/drift.ts';
import { MODEL_NAMES, WEIGHT_DTYPES } from './commands/models.ts';

const CLI = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(CLI, 'dist');

before(async () => {
  await promisify(execFile)(process.execPath, ['build.mjs'], { cwd: CLI });
});

/** Packages and chunks that `import` statements (not `import()`) reach from `file`. */
async function staticGraph(file: string, seen = new Set<string>(), packages = new Set<string>()): Promise<Set<string>> {
  if (seen.has(file)) return packages;
  seen.add(file);
  const source = await readFile(join(DIST, file), 'utf8');
  for (const [, spec] of source.matchAll(/^(?:import\s+(?:[^'"]*?\s+from\s+)?|\}\s+from\s+)"([^"]+)";/gm)) {
    if (spec?.startsWith('./')) await staticGraph(spec.slice(2), seen, packages);
    else if (spec) packages.add(spec);
  }
  return packages;
}

test('the command tree imports Node built-ins only (commander is in the bundle); each command loads its packages when it runs', async () => {
  const packages = [...(await staticGraph('main.mjs'))].filter((p) => !p.startsWith('node:')).sort();
  assert.deepEqual(packages, []);
});

test('the constants the command tree writes out equal the ones the packages own', () => {
  assert.deepEqual(MODEL_NAMES, ZOO_MODEL_NAMES);
  assert.deepEqual(WEIGHT_DTYPES, Object.keys(IMPORT_DTYPES));
  assert.equal(DEFAULT_REFERENCE_LIMIT_MIB, BENCH_REFERENCE_LIMIT_MIB);
});
