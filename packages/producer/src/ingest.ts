/**
 * ingest(): inputs (files, directories, archives, jsonl) -> decoded, grouped, content-addressed
 * documents, streamed, with a report of everything skipped or refused.
 *
 * Each input is read once, entry by entry; decoded texts go to a temporary spool file and only
 * their paths and sizes stay in memory. When the input ends its files are sorted and grouped
 * (grouping.ts), each document is bounded (token-budget.ts) and refused unbuilt when it cannot
 * fit, and the rest are built from the spool one at a time. Memory holds one document.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { DEFAULT_MAX_TOKENS_PER_DOCUMENT } from '@kvfold/contract';
import type { Grouping } from '@kvfold/contract';
import { decodeEntry } from './decode-text.ts';
import { documentOf, fileHeader, makeDocument } from './document.ts';
import type { Document } from './document.ts';
import { ProducerError, ProducerErrorCode } from './errors.ts';
import { planDocuments } from './grouping.ts';
import type { DocumentPlan, PlannedFile } from './grouping.ts';
import { inputKind } from './input-kind.ts';
import type { InputKind } from './input-kind.ts';
import { resolveLimits } from './limits.ts';
import type { IngestLimits } from './limits.ts';
import { readJsonl } from './read-jsonl.ts';
import { readTar } from './read-tar.ts';
import { readZip } from './read-zip.ts';
import { newReport } from './report.ts';
import type { IngestReport } from './report.ts';
import { reportSink } from './sink.ts';
import type { EntrySink, SourceEntry } from './sink.ts';
import { TextSpool } from './spool.ts';
import type { SpoolRange } from './spool.ts';
import { bytesThatFit, provenTooLong, tokenBounds } from './token-budget.ts';
import type { TokenBudget } from './token-budget.ts';
import { walkDirectory } from './walk-directory.ts';

/** Options of {@link ingest}. */
export interface IngestOptions {
  /**
   * `file`: one document per file. `directory`: one per top-level directory of each input,
   * folders and archives alike (the input's root files form one more, named after the input).
   * `auto`: documents that fit `tokenBudget` (see grouping.ts). Grouped files are packed under
   * `===== path =====` headers in path order. jsonl lines are always one document each.
   */
  readonly grouping?: Grouping;
  readonly limits?: Partial<IngestLimits>;
  /** Token limit of a document (default maxTokensPerDocument's default): packs `auto`, refuses what cannot fit. */
  readonly tokenBudget?: TokenBudget;
  /** Folder for the temporary text spool (default: the OS temp folder). */
  readonly spoolDir?: string;
}

/** Documents (iterate once) and the report they fill in as they are produced. */
export interface IngestRun extends AsyncIterable<Document> {
  readonly report: IngestReport;
}

/**
 * Ingests `inputs` lazily: nothing is read until the run is iterated. Missing inputs throw
 * `KVF_INGEST_INPUT_NOT_FOUND` (all of them named) before anything else is read.
 */
export function ingest(inputs: readonly string[], options: IngestOptions = {}): IngestRun {
  const report = newReport(inputs);
  const settings: Settings = {
    grouping: options.grouping ?? 'file',
    limits: resolveLimits(options.limits),
    budget: options.tokenBudget ?? { maxTokens: DEFAULT_MAX_TOKENS_PER_DOCUMENT },
    ...(options.spoolDir ? { spoolDir: options.spoolDir } : {}),
  };
  return {
    report,
    [Symbol.asyncIterator]: () => documents(inputs, settings, report)[Symbol.asyncIterator](),
  };
}

interface Settings {
  readonly grouping: Grouping;
  readonly limits: IngestLimits;
  readonly budget: TokenBudget;
  readonly spoolDir?: string;
}

/** A decoded file waiting in the spool. */
interface SpooledFile extends PlannedFile, SpoolRange {}

async function* documents(inputs: readonly string[], settings: Settings, report: IngestReport): AsyncGenerator<Document> {
  const kinds = await classifyAll(inputs);
  for (const [index, input] of inputs.entries()) {
    const kind = kinds[index] as InputKind;
    const sink = reportSink(report, input);
    const docs = kind === 'jsonl' ? jsonlDocuments(input, settings, sink, report) : spooledDocuments(input, kind, settings, sink, report);
    for await (const doc of docs) {
      report.documents += 1;
      report.bytes += doc.bytes.byteLength;
      yield doc;
    }
  }
}

async function classifyAll(inputs: readonly string[]): Promise<InputKind[]> {
  const missing: string[] = [];
  const kinds: InputKind[] = [];
  for (const input of inputs) {
    try {
      kinds.push(inputKind(input, await stat(input)));
    } catch {
      missing.push(input);
    }
  }
  if (missing.length > 0) {
    throw new ProducerError(ProducerErrorCode.InputNotFound, `input not found: ${missing.join(', ')} (check the paths)`);
  }
  return kinds;
}

/** The name an input's paths start with: a folder's name, an archive's name without its extension. */
export function inputName(input: string, kind: InputKind): string {
  const name = basename(resolve(input));
  if (kind === 'tar' || kind === 'zip') return name.replace(/\.(tar\.gz|tgz|tar|zip)$/i, '') || name;
  return name;
}

/** The entries of one input (jsonl is handled apart: its lines are documents already). */
function entriesOf(input: string, kind: Exclude<InputKind, 'jsonl'>, limits: IngestLimits, sink: EntrySink): AsyncIterable<SourceEntry> {
  switch (kind) {
    case 'directory':
      return walkDirectory(input, basename(resolve(input)), limits, sink);
    case 'tar':
      return readTar(input, limits, sink);
    case 'zip':
      return readZip(input, limits, sink);
    case 'file':
      return singleFile(input, limits, sink);
  }
}

async function* singleFile(input: string, limits: IngestLimits, sink: EntrySink): AsyncGenerator<SourceEntry> {
  const path = basename(input);
  const { size } = await stat(input);
  if (size > limits.maxEntryBytes) {
    sink.skip(path, `${size} bytes exceeds maxEntryBytes ${limits.maxEntryBytes}`);
    return;
  }
  yield { path, bytes: await readFile(input) };
}

async function* jsonlDocuments(input: string, settings: Settings, sink: EntrySink, report: IngestReport): AsyncGenerator<Document> {
  for await (const line of readJsonl(input, sink)) {
    if (line.text.trim() === '') {
      sink.skip(line.path, 'empty text');
      continue;
    }
    report.files += 1;
    const doc = makeDocument(input, [line.path], line.text);
    if (!refusedUnbuilt({ name: line.path, bytes: doc.bytes.byteLength }, settings, sink) && !refusedBuilt(line.path, doc.bytes, settings, sink)) yield doc;
  }
}

async function* spooledDocuments(
  input: string,
  kind: Exclude<InputKind, 'jsonl'>,
  settings: Settings,
  sink: EntrySink,
  report: IngestReport,
): AsyncGenerator<Document> {
  const spool = await TextSpool.create(settings.spoolDir);
  try {
    const files = await spoolInput(input, kind, settings.limits, sink, spool, report);
    const name = inputName(input, kind);
    const grouping = kind === 'file' ? 'file' : settings.grouping;
    const plans = planDocuments(files, grouping, name, bytesThatFit(settings.budget.maxTokens));
    for (const plan of plans) {
      if (refusedUnbuilt(plan, settings, sink)) continue;
      const bytes = await build(plan, spool);
      if (refusedBuilt(plan.name, bytes, settings, sink)) continue;
      yield documentOf(input, plan.name, plan.files.map((f) => f.path), bytes);
    }
  } finally {
    await spool.remove();
  }
}

/**
 * Reads, decodes and spools every entry of one input; returns its files named as documents name
 * them: a folder's under its name, an archive's under the archive's name (not doubled when the
 * archive holds one folder of that name, as `tar czf x.tar.gz x` makes).
 */
async function spoolInput(
  input: string,
  kind: Exclude<InputKind, 'jsonl'>,
  limits: IngestLimits,
  sink: EntrySink,
  spool: TextSpool,
  report: IngestReport,
): Promise<SpooledFile[]> {
  const files: SpooledFile[] = [];
  const byPath = new Map<string, SpooledFile>();
  for await (const entry of entriesOf(input, kind, limits, sink)) {
    if ('linkTo' in entry) {
      const target = byPath.get(entry.linkTo);
      if (!target) {
        sink.refuse(entry.path, ProducerErrorCode.LinkEntry, `hardlink to ${entry.linkTo}, which is not an earlier text file of the archive`);
        continue;
      }
      const file = { ...target, path: entry.path };
      report.files += 1;
      files.push(file);
      byPath.set(entry.path, file);
      continue;
    }
    const decoded = decodeEntry(entry.path, entry.bytes);
    if (!decoded.ok) {
      sink.skip(entry.path, decoded.reason);
      continue;
    }
    report.files += 1;
    const range = await spool.append(Buffer.from(decoded.text, 'utf8'));
    const file = { path: entry.path, ...range, endsWithNewline: decoded.text.endsWith('\n') };
    files.push(file);
    byPath.set(entry.path, file);
  }
  if (kind !== 'tar' && kind !== 'zip') return files;
  const name = inputName(input, kind);
  const rooted = files.length > 0 && files.every((f) => f.path.startsWith(`${name}/`));
  return rooted ? files : files.map((f) => ({ ...f, path: `${name}/${f.path}` }));
}

/**
 * Refuses, without building it, a document that is over `maxDocumentBytes` or proven to have more
 * tokens than the budget (lower bound over the limit); returns whether it was refused.
 */
function refusedUnbuilt(plan: Pick<DocumentPlan, 'name' | 'bytes'>, settings: Settings, sink: EntrySink): boolean {
  const { maxDocumentBytes } = settings.limits;
  if (plan.bytes > maxDocumentBytes) {
    sink.refuse(plan.name, ProducerErrorCode.DocumentTooLarge, `${plan.bytes} bytes, over maxDocumentBytes ${maxDocumentBytes}; group it smaller (--group auto or file)`);
    return true;
  }
  const { maxTokens, maxTokenBytes } = settings.budget;
  const { lower } = tokenBounds(plan.bytes, settings.budget);
  if (lower > maxTokens) {
    sink.refuse(
      plan.name,
      ProducerErrorCode.DocumentTooLong,
      `at least ${lower} tokens (${plan.bytes} bytes, at most ${maxTokenBytes} bytes per token of the model's vocabulary), ` +
        `over maxTokensPerDocument ${maxTokens}; split it (--group auto) or raise the limit`,
    );
    return true;
  }
  return false;
}

/**
 * Refuses a built document whose text the model's vocabulary proves too long (token-floor.ts);
 * only a document whose size neither proves it fits nor proves it too long is read.
 */
function refusedBuilt(name: string, bytes: Uint8Array, settings: Settings, sink: EntrySink): boolean {
  const lower = provenTooLong(bytes, settings.budget);
  if (lower === undefined) return false;
  sink.refuse(
    name,
    ProducerErrorCode.DocumentTooLong,
    `at least ${lower} tokens (the fewest pieces of the model's vocabulary its text can be cut into), ` +
      `over maxTokensPerDocument ${settings.budget.maxTokens}; split it (--group auto) or raise the limit`,
  );
  return true;
}

/** The bytes of `plan`, read back from the spool. */
async function build(plan: DocumentPlan<SpooledFile>, spool: TextSpool): Promise<Uint8Array> {
  const out = Buffer.allocUnsafeSlow(plan.bytes);
  let at = 0;
  for (const f of plan.files) {
    if (plan.headers) at += out.write(fileHeader(f.path), at, 'utf8');
    await spool.readInto(f, out, at);
    at += f.bytes;
    if (plan.headers && !f.endsWithNewline) at += out.write('\n', at, 'utf8');
  }
  return new Uint8Array(out.buffer, out.byteOffset, at);
}
