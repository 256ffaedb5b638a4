/**
 * Spools a multipart upload to a temporary folder and turns it into producer inputs, keeping the
 * names the client sent so document paths (and so corpus and batch ids) do not depend on where the
 * server spooled them:
 *
 * - a file named without a folder (`notes.md`, `logs.tar.gz`, `dump.jsonl`) is one input of its own;
 * - files named `dir/...` (a directory the client walked) are rebuilt under one folder per
 *   top-level `dir`, and each such folder is one input, read like a local directory.
 *
 * A name that is absolute or holds `..` is refused in the report (nothing is written for it); the
 * `spec` field, which must come once, is returned as text for the caller to parse. A body the
 * multipart parser cannot read (no boundary, cut short) is the client's error: 400.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Multipart } from '@fastify/multipart';
import type { RefusedEntry } from '@kvfold/producer';
import { ApiError, ApiErrorCode, apiErrors } from './errors.ts';

/** One producer input and the name the client knows it by. */
export interface SpooledInput {
  readonly path: string;
  readonly name: string;
}

/** What an upload became. */
export interface SpooledUpload {
  readonly inputs: readonly SpooledInput[];
  /** The `spec` field, if sent. */
  readonly spec?: string;
  readonly files: number;
  readonly bytes: number;
  readonly refused: readonly RefusedEntry[];
}

/** Upload limits. */
export interface UploadLimits {
  /** All files together, bytes. */
  readonly totalBytes: number;
}

/** The producer's code for an entry escaping its root (see @kvfold/producer errors). */
const ESCAPING_ENTRY = 'KVF_INGEST_ESCAPING_ENTRY';

/** Called as the upload is read. */
export interface SpoolHooks {
  /** The `spec` field's text, as soon as it arrives (before the files that follow it); may throw to refuse the upload. */
  readonly onSpec?: (text: string) => Promise<void>;
}

/** Reads every part of `parts` (a function, so that a parser that refuses the headers is caught too) into `dir`. */
export async function spoolUpload(parts: () => AsyncIterable<Multipart>, dir: string, limits: UploadLimits, hooks: SpoolHooks = {}): Promise<SpooledUpload> {
  try {
    return await spoolParts(parts(), dir, limits, hooks);
  } catch (err) {
    throw malformedBody(err);
  }
}

/**
 * What the multipart parser (busboy) throws — `Multipart: Boundary not found`, `Unexpected end of
 * multipart data` — are plain errors without a code; ours carry a status and the filesystem's carry
 * a syscall, and those stay as they are.
 */
function malformedBody(err: unknown): unknown {
  const e = err as { statusCode?: unknown; syscall?: unknown; code?: unknown; message?: unknown };
  if (err instanceof ApiError || !(err instanceof Error) || e.statusCode !== undefined || e.syscall !== undefined || e.code !== undefined) return err;
  return new ApiError(400, ApiErrorCode.BadRequest, `multipart body cannot be read (${err.message}): send a complete multipart/form-data body with the boundary named in Content-Type`, { cause: err });
}

async function spoolParts(parts: AsyncIterable<Multipart>, dir: string, limits: UploadLimits, hooks: SpoolHooks): Promise<SpooledUpload> {
  const inputs: SpooledInput[] = [];
  const trees = new Set<string>();
  const refused: RefusedEntry[] = [];
  let spec: string | undefined;
  let files = 0;
  let bytes = 0;

  for await (const part of parts) {
    if (part.type === 'field') {
      if (part.fieldname !== 'spec') throw apiErrors.badRequest(`unknown form field ${JSON.stringify(part.fieldname)}: send files and one "spec" field`);
      if (typeof part.value !== 'string') throw apiErrors.badRequest('spec: must be a JSON text field');
      if (spec !== undefined) throw apiErrors.badRequest('spec: the form has more than one "spec" field; send the batch spec once');
      spec = part.value;
      await hooks.onSpec?.(spec);
      continue;
    }
    const segments = part.filename.replace(/\\/g, '/').split('/');
    const unsafe = part.filename === '' || part.filename.startsWith('/') || /^[a-zA-Z]:/.test(part.filename) || segments.some((s) => s === '' || s === '.' || s === '..');
    if (unsafe) {
      part.file.resume();
      await new Promise((resolve) => part.file.on('close', resolve));
      refused.push({ input: part.filename, entry: part.filename, reason: 'file name is absolute or escapes the upload root', code: ESCAPING_ENTRY as RefusedEntry['code'] });
      continue;
    }
    files += 1;
    let target: string;
    if (segments.length === 1) {
      target = join(dir, 'inputs', String(inputs.length), segments[0] as string);
      inputs.push({ path: target, name: part.filename });
    } else {
      const top = segments[0] as string;
      const root = join(dir, 'trees', top);
      if (!trees.has(top)) {
        trees.add(top);
        inputs.push({ path: root, name: top });
      }
      target = join(root, ...segments.slice(1));
    }
    await mkdir(join(target, '..'), { recursive: true });
    let written = 0;
    part.file.on('data', (chunk: Buffer) => {
      written += chunk.length;
      if (bytes + written > limits.totalBytes) {
        part.file.destroy(new ApiError(413, ApiErrorCode.BodyTooLarge, `upload is larger than ${limits.totalBytes} bytes (KVFOLD_API_UPLOAD_LIMIT); upload fewer files or split the corpus`));
      }
    });
    try {
      await pipeline(part.file, createWriteStream(target, { flags: 'wx' }));
    } catch (err) {
      if ((err as { code?: string }).code === 'EEXIST') throw apiErrors.badRequest(`file ${part.filename} was sent twice`);
      throw err;
    }
    if (part.file.truncated) throw apiErrors.tooLarge(`file ${part.filename} is larger than the upload limit (KVFOLD_API_UPLOAD_LIMIT)`);
    bytes += written;
  }
  return { inputs, ...(spec !== undefined ? { spec } : {}), files, bytes, refused };
}
