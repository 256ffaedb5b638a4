/**
 * Which files make which document: pure planning over one input's files, sorted by path, no I/O.
 *
 * - `file`: one document per file.
 * - `directory`: one per top-level directory of the input (paths are `<input name>/<top>/...`);
 *   the input's root files form one more, named after the input.
 * - `auto`: documents that fit a byte budget (an upper bound on tokens, see token-budget.ts): a
 *   directory that fits is one document; one that does not is split into its entries, in path
 *   order, packing neighbours together while they fit and splitting the largest directories the
 *   same way, recursively; the last files of a split directory share a document with the siblings
 *   after it while they fit. A single file over the budget is a document of its own.
 */
import type { Grouping } from '@kvfold/contract';
import { fileHeader } from './document.ts';

/** A file as grouping sees it: its path and the UTF-8 bytes of its text. */
export interface PlannedFile {
  readonly path: string;
  readonly bytes: number;
  readonly endsWithNewline: boolean;
}

/** One document to build: its name (the file, the directory) and its files in order. */
export interface DocumentPlan<F extends PlannedFile = PlannedFile> {
  readonly name: string;
  readonly files: readonly F[];
  /** Whether the files are written under `===== path =====` headers (every grouped document). */
  readonly headers: boolean;
  /** UTF-8 bytes of the document. */
  readonly bytes: number;
}

/** Bytes a file takes in a grouped document: its header, its text, a final newline if missing. */
export function packedBytes(file: PlannedFile): number {
  return Buffer.byteLength(fileHeader(file.path)) + file.bytes + (file.endsWithNewline ? 0 : 1);
}

function plan<F extends PlannedFile>(name: string, files: readonly F[], headers: boolean): DocumentPlan<F> {
  const bytes = headers ? files.reduce((n, f) => n + packedBytes(f), 0) : (files[0]?.bytes ?? 0);
  return { name, files, headers, bytes };
}

const byPath = (a: PlannedFile, b: PlannedFile) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/**
 * Plans the documents of one input named `inputName` (every path starts with `<inputName>/`,
 * except a lone file input, whose path is its name). `budgetBytes` is used by `auto` only.
 */
export function planDocuments<F extends PlannedFile>(files: readonly F[], grouping: Grouping, inputName: string, budgetBytes: number): DocumentPlan<F>[] {
  const sorted = [...files].sort(byPath);
  if (grouping === 'file') return sorted.map((f) => plan(f.path, [f], false));
  if (grouping === 'directory') return planDirectories(sorted, inputName);
  const out: DocumentPlan<F>[] = [];
  planTree(treeOf(sorted, inputName), budgetBytes, out);
  return out;
}

function planDirectories<F extends PlannedFile>(sorted: readonly F[], inputName: string): DocumentPlan<F>[] {
  const groups = new Map<string, F[]>();
  const root = `${inputName}/`;
  for (const f of sorted) {
    const rest = f.path.startsWith(root) ? f.path.slice(root.length) : f.path;
    const slash = rest.indexOf('/');
    const key = slash === -1 ? inputName : `${root}${rest.slice(0, slash)}/`;
    const group = groups.get(key) ?? [];
    group.push(f);
    groups.set(key, group);
  }
  return [...groups.keys()].sort().map((key) => plan(key, groups.get(key) ?? [], true));
}

/** A directory: its entries in path order and the bytes they take packed. */
interface Tree<F> {
  readonly path: string;
  readonly entries: Array<Tree<F> | F>;
  bytes: number;
}

const isTree = <F>(e: Tree<F> | F): e is Tree<F> => (e as Tree<F>).entries !== undefined;

/** Builds the directory tree of sorted paths under `rootPath` (a directory's files are contiguous). */
function treeOf<F extends PlannedFile>(sorted: readonly F[], rootPath: string): Tree<F> {
  const root: Tree<F> = { path: rootPath, entries: [], bytes: 0 };
  const stack: Tree<F>[] = [root];
  for (const f of sorted) {
    const dirs = f.path.split('/').slice(0, -1);
    // Pop to the deepest open directory that is a prefix of this file's directory.
    while (stack.length > 1 && !f.path.startsWith(`${(stack[stack.length - 1] as Tree<F>).path}/`)) stack.pop();
    const depth = (stack[stack.length - 1] as Tree<F>).path.split('/').length;
    for (let i = depth; i < dirs.length; i++) {
      const child: Tree<F> = { path: dirs.slice(0, i + 1).join('/'), entries: [], bytes: 0 };
      (stack[stack.length - 1] as Tree<F>).entries.push(child);
      stack.push(child);
    }
    const size = packedBytes(f);
    for (const t of stack) t.bytes += size;
    (stack[stack.length - 1] as Tree<F>).entries.push(f);
  }
  return root;
}

function filesOf<F extends PlannedFile>(entry: Tree<F> | F, out: F[] = []): F[] {
  if (!isTree(entry)) out.push(entry);
  else for (const e of entry.entries) filesOf(e, out);
  return out;
}

/**
 * What to call a document that holds `paths` (in order) when only its paths are known, as in a
 * worker's error: the path of a lone file, else the directory the files share and how many they are.
 */
export function documentName(paths: readonly string[]): string {
  if (paths.length <= 1) return paths[0] ?? '(no path)';
  const first = (paths[0] as string).split('/');
  const last = (paths[paths.length - 1] as string).split('/');
  let common = 0;
  while (common < first.length - 1 && first[common] === last[common]) common++;
  return `${first.slice(0, common).join('/')}/ (${paths.length} files: ${paths[0]} .. ${paths[paths.length - 1]})`;
}

/** The name of a packed document: a lone file's path, else the directory its files share. */
function packName<F extends PlannedFile>(files: readonly F[], whole?: Tree<F>): string {
  if (whole) return `${whole.path}/`;
  return documentName(files.map((f) => f.path));
}

/** The document being packed: its files, the entries they came from, their packed bytes. */
interface Pack<F> {
  files: F[];
  entries: Array<Tree<F> | F>;
  size: number;
}

const emptyPack = <F>(): Pack<F> => ({ files: [], entries: [], size: 0 });

function flush<F extends PlannedFile>(pack: Pack<F>, out: DocumentPlan<F>[]): Pack<F> {
  const only = pack.entries.length === 1 ? pack.entries[0] : undefined;
  if (pack.files.length > 0) out.push(plan(packName(pack.files, only && isTree(only) ? only : undefined), pack.files, true));
  return emptyPack();
}

function planTree<F extends PlannedFile>(tree: Tree<F>, budget: number, out: DocumentPlan<F>[]): void {
  if (tree.bytes <= budget) {
    const files = filesOf(tree);
    if (files.length > 0) out.push(plan(packName(files, tree), files, true));
    return;
  }
  flush(packEntries(tree, budget, out, emptyPack()), out);
}

/**
 * Packs the entries of a directory over the budget into `open` and the documents after it; returns
 * the last document, still open, so the directory's trailing files share a document with the
 * siblings that follow it. A directory over the budget starts a document of its own.
 */
function packEntries<F extends PlannedFile>(tree: Tree<F>, budget: number, out: DocumentPlan<F>[], open: Pack<F>): Pack<F> {
  let pack = open;
  for (const entry of tree.entries) {
    const bytes = isTree(entry) ? entry.bytes : packedBytes(entry);
    if (bytes > budget) {
      pack = flush(pack, out);
      if (isTree(entry)) pack = packEntries(entry, budget, out, pack);
      else out.push(plan(entry.path, [entry], true));
      continue;
    }
    if (pack.size + bytes > budget) pack = flush(pack, out);
    pack.files.push(...filesOf(entry));
    pack.entries.push(entry);
    pack.size += bytes;
  }
  return pack;
}
