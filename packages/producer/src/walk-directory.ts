/**
 * Walks a directory in sorted order, honouring `.gitignore` files at every level and always
 * leaving out `.git/`. Symlinks are not followed.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import ignore from 'ignore';
import type { Ignore } from 'ignore';
import type { IngestLimits } from './limits.ts';
import type { EntrySink, SourceEntry } from './sink.ts';

/** The rules of one `.gitignore`, with the directory (relative to the root) they apply under. */
interface RuleSet {
  readonly base: string;
  readonly rules: Ignore;
}

/**
 * Whether `rel` is ignored. Deeper `.gitignore` files are consulted last and win, as in git;
 * a directory that is ignored is never entered, so nothing below it can be re-included.
 */
function isIgnored(ruleSets: readonly RuleSet[], rel: string, isDirectory: boolean): boolean {
  let ignored = false;
  for (const { base, rules } of ruleSets) {
    const local = base === '' ? rel : rel.slice(base.length + 1);
    const result = rules.test(isDirectory ? `${local}/` : local);
    if (result.ignored) ignored = true;
    else if (result.unignored) ignored = false;
  }
  return ignored;
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * Yields the files under `root` as `<prefix>/<relative path>` entries, in sorted path order.
 * Files over `limits.maxEntryBytes`, symlinks and special files are skipped into `sink`;
 * ignored files are counted.
 */
export async function* walkDirectory(
  root: string,
  prefix: string,
  limits: IngestLimits,
  sink: EntrySink,
): AsyncGenerator<SourceEntry> {
  yield* walk(root, '', [], prefix, limits, sink);
}

async function* walk(
  dir: string,
  rel: string,
  inherited: readonly RuleSet[],
  prefix: string,
  limits: IngestLimits,
  sink: EntrySink,
): AsyncGenerator<SourceEntry> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort(byName);
  let ruleSets = inherited;
  if (entries.some((e) => e.name === '.gitignore' && e.isFile())) {
    const rules = ignore({ ignorecase: false }).add(await readFile(join(dir, '.gitignore'), 'utf8'));
    ruleSets = [...inherited, { base: rel, rules }];
  }
  for (const entry of entries) {
    const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
    const shown = prefix === '' ? childRel : `${prefix}/${childRel}`;
    if (entry.name === '.git') {
      sink.ignore();
      continue;
    }
    if (isIgnored(ruleSets, childRel, entry.isDirectory())) {
      sink.ignore();
      continue;
    }
    const full = join(dir, entry.name);
    if (entry.isSymbolicLink()) {
      sink.skip(shown, 'symlink (not followed)');
    } else if (entry.isDirectory()) {
      yield* walk(full, childRel, ruleSets, prefix, limits, sink);
    } else if (entry.isFile()) {
      const { size } = await stat(full);
      if (size > limits.maxEntryBytes) {
        sink.skip(shown, `${size} bytes exceeds maxEntryBytes ${limits.maxEntryBytes}`);
        continue;
      }
      try {
        yield { path: shown, bytes: await readFile(full) };
      } catch (error) {
        sink.skip(shown, `unreadable: ${error instanceof Error ? error.message : String(error)}`);
      }
    } else {
      sink.skip(shown, 'not a regular file');
    }
  }
}
