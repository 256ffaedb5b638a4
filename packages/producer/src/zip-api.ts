/**
 * Typed view of the parts of yauzl 3 used here (its @types package describes yauzl 2, which
 * lacks the promise API and the low-level file name decoder).
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';

/** A central-directory entry as yauzl 3 gives it with `decodeStrings: false`. */
export interface RawZipEntry {
  readonly fileNameRaw: Buffer;
  readonly extraFields: ReadonlyArray<{ id: number; data: Buffer }>;
  readonly generalPurposeBitFlag: number;
  readonly externalFileAttributes: number;
  readonly versionMadeBy: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly compressionMethod: number;
  isEncrypted(): boolean;
  canDecodeFileData(): boolean;
}

/** An open zip file. */
export interface ZipHandle {
  readonly entryCount: number;
  readonly fileSize: number;
  eachEntry(): AsyncIterable<RawZipEntry>;
  openReadStreamPromise(entry: RawZipEntry): Promise<Readable>;
  close(): void;
}

interface Yauzl3 {
  openPromise(path: string, options: Record<string, boolean>): Promise<ZipHandle>;
  getFileNameLowLevel(flags: number, name: Buffer, extraFields: RawZipEntry['extraFields'], strict: boolean): string;
}

const api = yauzl as unknown as Yauzl3;

/**
 * Opens `path` for entry-by-entry reading. File names are left undecoded so that one hostile name
 * is refused on its own instead of aborting the whole archive (yauzl's own check is fatal).
 */
export function openZip(path: string): Promise<ZipHandle> {
  return api.openPromise(path, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: true });
}

/** Decodes an entry name (CP437 or UTF-8 per the spec); backslashes become slashes. */
export function zipEntryName(entry: RawZipEntry): string {
  return api.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
}

/** Unix file type bits of an entry made on Unix, or undefined. */
export function zipUnixMode(entry: RawZipEntry): number | undefined {
  const UNIX_HOST = 3;
  if (entry.versionMadeBy >> 8 !== UNIX_HOST) return undefined;
  return (entry.externalFileAttributes >>> 16) & 0o170000;
}
