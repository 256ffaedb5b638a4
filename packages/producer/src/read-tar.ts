/**
 * Streams the entries of a .tar, .tar.gz or .tgz with node-tar's Parser: nothing is extracted to
 * disk, one entry's bytes at a time are held in memory, hostile entries are refused.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Parser } from 'tar';
import type { ReadEntry } from 'tar';
import { AsyncQueue } from './async-queue.ts';
import { checkEntryPath } from './entry-path.ts';
import { ProducerErrorCode } from './errors.ts';
import { exceedsRatio } from './limits.ts';
import type { IngestLimits } from './limits.ts';
import type { EntrySink, SourceEntry } from './sink.ts';

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const DIRECTORY_TYPES = new Set(['Directory', 'GNUDumpDir']);

/**
 * Reads one entry's body; rejects if the parser fails first (truncated or aborted stream), through
 * `failures`, which holds the reader of the entry in progress only. (A race against one promise
 * that outlives the archive would keep every entry's bytes reachable until the archive ends.)
 */
function readBody(entry: ReadEntry, failures: { current?: (error: Error) => void }): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const done = (error?: Error) => {
      failures.current = undefined;
      if (error) reject(error);
      else resolve(Buffer.concat(chunks));
    };
    failures.current = done;
    entry.on('data', (chunk: Buffer) => chunks.push(chunk));
    entry.on('end', () => done());
    entry.on('error', (error: unknown) => done(error instanceof Error ? error : new Error(String(error))));
  });
}

/**
 * Yields the regular files of tar archive `file`. Directories are passed over; a hardlink is
 * yielded as a link to its target (ingest accepts it only when the target is an earlier file of the
 * same archive, so it never reaches outside); symlinks, devices and entries escaping the root are
 * refused; a corrupt archive gives one refusal, at the first sign; the entry, byte and ratio caps of `limits` stop the
 * archive (or the entry) with a refusal in `sink`. Gzip is detected by node-tar itself.
 */
export async function* readTar(file: string, limits: IngestLimits, sink: EntrySink): AsyncGenerator<SourceEntry> {
  const compressedSize = (await stat(file)).size;
  // The filter runs as each header is parsed, so a failure can name the entry it happened in.
  let lastHeader = '(archive)';
  const parser = new Parser({
    strict: false,
    filter: (path: string) => {
      lastHeader = path;
      return true;
    },
  });
  const queue = new AsyncQueue<ReadEntry>();
  const failures: { current?: (error: Error) => void } = {};
  const fail = (error: Error) => {
    failures.current?.(error);
    queue.fail(error);
  };
  parser.on('entry', (entry: ReadEntry) => queue.push(entry));
  // A damaged archive makes node-tar warn once per header it cannot read; the first one says it.
  let corrupt = false;
  const refuseCorrupt = (entry: string, reason: string) => {
    if (!corrupt) sink.refuse(entry, ProducerErrorCode.CorruptArchive, reason);
    corrupt = true;
  };
  parser.on('warn', (code: string, message: string | Error) => {
    if (code === 'TAR_ENTRY_INVALID' || code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ENTRY_ERROR') {
      refuseCorrupt('(archive)', `${code}: ${message instanceof Error ? message.message : String(message)}`);
    }
  });
  parser.on('error', (error: Error) => fail(error));
  parser.on('abort', (error: Error) => fail(error));
  parser.on('end', () => queue.end());
  const source = createReadStream(file);
  source.on('error', (error) => fail(error));
  source.pipe(parser as unknown as NodeJS.WritableStream);

  let entries = 0;
  let total = 0;
  try {
    for await (const entry of queue) {
      entries += 1;
      if (entries > limits.maxEntries) {
        sink.refuse(entry.path, ProducerErrorCode.TooManyEntries, `archive has more than ${limits.maxEntries} entries; the rest is not read`);
        return;
      }
      const checked = checkEntryPath(entry.path);
      if (!checked.ok) {
        sink.refuse(entry.path, checked.code, checked.reason);
        entry.resume();
        continue;
      }
      if (DIRECTORY_TYPES.has(entry.type) || checked.path === '') {
        entry.resume();
        continue;
      }
      if (entry.type === 'SymbolicLink') {
        sink.refuse(entry.path, ProducerErrorCode.LinkEntry, `symlink to ${entry.linkpath ?? '?'} (symlinks are never followed)`);
        entry.resume();
        continue;
      }
      if (entry.type === 'Link') {
        entry.resume();
        const target = checkEntryPath(entry.linkpath ?? '');
        if (!target.ok || target.path === '') {
          sink.refuse(entry.path, ProducerErrorCode.LinkEntry, `hardlink to ${entry.linkpath ?? '?'}, outside the archive root`);
          continue;
        }
        yield { path: checked.path, linkTo: target.path };
        continue;
      }
      if (!FILE_TYPES.has(entry.type)) {
        sink.refuse(entry.path, ProducerErrorCode.SpecialEntry, `${entry.type} entry is not a regular file`);
        entry.resume();
        continue;
      }
      if (entry.size > limits.maxEntryBytes) {
        sink.refuse(entry.path, ProducerErrorCode.EntryTooLarge, `${entry.size} bytes exceeds maxEntryBytes ${limits.maxEntryBytes}`);
        entry.resume();
        continue;
      }
      if (total + entry.size > limits.maxTotalBytes) {
        sink.refuse(entry.path, ProducerErrorCode.ArchiveTooLarge, `archive expands past maxTotalBytes ${limits.maxTotalBytes}; the rest is not read`);
        return;
      }
      if (exceedsRatio(total + entry.size, compressedSize, limits.maxTotalRatio, limits.ratioGraceBytes)) {
        sink.refuse(
          entry.path,
          ProducerErrorCode.CompressionRatio,
          `archive of ${compressedSize} bytes expands past ratio ${limits.maxTotalRatio}; the rest is not read`,
        );
        return;
      }
      const bytes = await readBody(entry, failures);
      total += bytes.byteLength;
      yield { path: checked.path, bytes };
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = /decompression ratio/.test(message) ? ProducerErrorCode.CompressionRatio : ProducerErrorCode.CorruptArchive;
    if (code === ProducerErrorCode.CorruptArchive) refuseCorrupt(lastHeader, `archive stopped here: ${message}`);
    else sink.refuse(lastHeader, code, `archive stopped here: ${message}`);
  } finally {
    source.unpipe();
    source.destroy();
  }
}
