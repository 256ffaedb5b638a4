/**
 * Streams the entries of a .zip with yauzl (random access from the file, no extraction):
 * declared sizes are checked before any byte is inflated, actual bytes are counted while inflating.
 */
import type { Readable } from 'node:stream';
import { checkEntryPath } from './entry-path.ts';
import { ProducerErrorCode } from './errors.ts';
import { exceedsRatio } from './limits.ts';
import type { IngestLimits } from './limits.ts';
import type { EntrySink, SourceEntry } from './sink.ts';
import { openZip, zipEntryName, zipUnixMode } from './zip-api.ts';
import type { RawZipEntry } from './zip-api.ts';

const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

type Refusal = { readonly code: ProducerErrorCode; readonly reason: string; readonly stopArchive: boolean };

/** Reads a stream, stopping (and destroying it) as soon as `check` refuses the running total. */
async function readGuarded(
  stream: Readable,
  check: (entryBytes: number) => Refusal | undefined,
): Promise<{ ok: true; bytes: Uint8Array } | { ok: false; refusal: Refusal }> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      length += chunk.length;
      const refusal = check(length);
      if (refusal) return { ok: false, refusal };
      chunks.push(chunk);
    }
  } catch (error) {
    // yauzl reports sizes that disagree with the header, bad CRCs and inflate errors here;
    // random access means the next entry is still readable.
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, refusal: { code: ProducerErrorCode.CorruptArchive, reason: `cannot inflate: ${message}`, stopArchive: false } };
  } finally {
    stream.destroy();
  }
  return { ok: true, bytes: Buffer.concat(chunks) };
}

/**
 * Yields the regular files of zip archive `file`. Links, special files, encrypted entries and
 * names escaping the root are refused; a declared or actual size or ratio over the caps refuses
 * the entry (or, for archive-wide caps, the rest of the archive) without inflating it all.
 */
export async function* readZip(file: string, limits: IngestLimits, sink: EntrySink): AsyncGenerator<SourceEntry> {
  let zip: Awaited<ReturnType<typeof openZip>>;
  try {
    zip = await openZip(file);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    sink.refuse('(archive)', ProducerErrorCode.CorruptArchive, `not a readable zip: ${message}`);
    return;
  }
  let entries = 0;
  let total = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      entries += 1;
      const name = zipEntryName(entry);
      if (entries > limits.maxEntries) {
        sink.refuse(name, ProducerErrorCode.TooManyEntries, `archive has ${zip.entryCount} entries, more than ${limits.maxEntries}; the rest is not read`);
        return;
      }
      const checked = checkEntryPath(name);
      if (!checked.ok) {
        sink.refuse(name, checked.code, checked.reason);
        continue;
      }
      const mode = zipUnixMode(entry);
      if (name.endsWith('/') || mode === S_IFDIR || checked.path === '') continue;
      if (mode === S_IFLNK) {
        sink.refuse(name, ProducerErrorCode.LinkEntry, 'symlink (links are never followed)');
        continue;
      }
      if (mode !== undefined && mode !== 0 && mode !== S_IFREG) {
        sink.refuse(name, ProducerErrorCode.SpecialEntry, `file type 0o${mode.toString(8)} is not a regular file`);
        continue;
      }
      const refusal = declaredRefusal(entry, total, zip.fileSize, limits);
      if (refusal) {
        sink.refuse(name, refusal.code, refusal.reason);
        if (refusal.stopArchive) return;
        continue;
      }
      const stream = await zip.openReadStreamPromise(entry);
      const read = await readGuarded(stream, (n) => actualRefusal(entry, n, total, zip.fileSize, limits));
      if (!read.ok) {
        sink.refuse(name, read.refusal.code, read.refusal.reason);
        if (read.refusal.stopArchive) return;
        continue;
      }
      total += read.bytes.byteLength;
      yield { path: checked.path, bytes: read.bytes };
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    sink.refuse('(archive)', ProducerErrorCode.CorruptArchive, `cannot read past entry ${entries}: ${message}`);
  } finally {
    zip.close();
  }
}

/** Refusal decided from the central directory alone, before inflating anything. */
function declaredRefusal(entry: RawZipEntry, total: number, archiveBytes: number, limits: IngestLimits): Refusal | undefined {
  if (entry.isEncrypted() || !entry.canDecodeFileData()) {
    return {
      code: ProducerErrorCode.UnsupportedEntry,
      reason: entry.isEncrypted() ? 'encrypted entry' : `compression method ${entry.compressionMethod} is not supported`,
      stopArchive: false,
    };
  }
  return actualRefusal(entry, entry.uncompressedSize, total, archiveBytes, limits);
}

/** Refusal for `entryBytes` uncompressed bytes of `entry` (declared, or read so far). */
function actualRefusal(
  entry: RawZipEntry,
  entryBytes: number,
  total: number,
  archiveBytes: number,
  limits: IngestLimits,
): Refusal | undefined {
  if (entryBytes > limits.maxEntryBytes) {
    return { code: ProducerErrorCode.EntryTooLarge, reason: `${entryBytes} bytes exceeds maxEntryBytes ${limits.maxEntryBytes}`, stopArchive: false };
  }
  if (exceedsRatio(entryBytes, entry.compressedSize, limits.maxEntryRatio, limits.ratioGraceBytes)) {
    const ratio = Math.round(entryBytes / Math.max(1, entry.compressedSize));
    return {
      code: ProducerErrorCode.CompressionRatio,
      reason: `expands ${ratio}x (${entry.compressedSize} -> ${entryBytes} bytes), over maxEntryRatio ${limits.maxEntryRatio}`,
      stopArchive: false,
    };
  }
  if (total + entryBytes > limits.maxTotalBytes) {
    return { code: ProducerErrorCode.ArchiveTooLarge, reason: `archive expands past maxTotalBytes ${limits.maxTotalBytes}; the rest is not read`, stopArchive: true };
  }
  if (exceedsRatio(total + entryBytes, archiveBytes, limits.maxTotalRatio, limits.ratioGraceBytes)) {
    return {
      code: ProducerErrorCode.CompressionRatio,
      reason: `archive of ${archiveBytes} bytes expands past ratio ${limits.maxTotalRatio}; the rest is not read`,
      stopArchive: true,
    };
  }
  return undefined;
}
