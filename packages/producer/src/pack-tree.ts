/**
 * packTree(): a folder as a tar stream of exactly what ingest would read from it, built while
 * walking: the same walker (.gitignore, `.git/`, symlinks and special files left out) and the same
 * decoding (empty, whitespace-only and binary files left out, Latin-1 re-encoded as UTF-8). It is
 * how `kvfold enqueue` sends a folder: one upload part however many files, nothing the fold would
 * not read, and memory for one file at a time (the stream waits for its reader).
 */
import { basename, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { decodeEntry } from './decode-text.ts';
import { resolveLimits } from './limits.ts';
import type { IngestLimits } from './limits.ts';
import { newReport } from './report.ts';
import type { IngestReport } from './report.ts';
import { reportSink } from './sink.ts';
import { walkDirectory } from './walk-directory.ts';

/** A folder being packed: the tar stream, and the report filled in as it is read. */
export interface PackedTree {
  /** Upload name of the tar: `<folder name>.tar`, whose entries are `<folder name>/<path>`. */
  readonly name: string;
  readonly stream: Readable;
  /** What the walk left out; complete when `stream` has ended. */
  readonly report: IngestReport;
}

/** Entry mtime: fixed, so the same files always give the same tar bytes. */
const EPOCH = new Date(0);

/** Packs the folder `dir` (see the file header). */
export function packTree(dir: string, limits: Partial<IngestLimits> = {}): PackedTree {
  const top = basename(resolve(dir));
  const report = newReport([dir]);
  const sink = reportSink(report, dir);
  const pack = tarStream.pack();
  const write = (name: string, body: Buffer) =>
    new Promise<void>((done, fail) => {
      pack.entry({ name, size: body.byteLength, mode: 0o644, mtime: EPOCH }, body, (err) => (err ? fail(err) : done()));
    });
  (async () => {
    for await (const entry of walkDirectory(dir, top, resolveLimits(limits), sink)) {
      if (!('bytes' in entry)) continue;
      const decoded = decodeEntry(entry.path, entry.bytes);
      if (!decoded.ok) {
        sink.skip(entry.path, decoded.reason);
        continue;
      }
      const body = Buffer.from(decoded.text, 'utf8');
      report.files += 1;
      report.bytes += body.byteLength;
      await write(entry.path, body);
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return { name: `${top}.tar`, stream: pack as unknown as Readable, report };
}
