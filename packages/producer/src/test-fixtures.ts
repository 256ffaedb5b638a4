/**
 * Test-only helpers: write real archives, including hostile ones no honest tool would make.
 * `rawTar` and `rawZip` are also offered to other packages' tests as `@kvfold/producer/testing`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { Header } from 'tar';

/** A fresh temporary directory and a function that removes it. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kvfold-producer-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** One raw tar member. */
export interface TarMember {
  readonly path: string;
  readonly type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'FIFO';
  readonly body?: string | Uint8Array;
  readonly linkpath?: string;
}

/** Builds tar bytes member by member with node-tar's Header encoder (paths are kept verbatim). */
export function rawTar(members: readonly TarMember[], gzip = false): Buffer {
  const blocks: Buffer[] = [];
  for (const member of members) {
    const body = member.body === undefined ? Buffer.alloc(0) : Buffer.from(member.body);
    const header = new Header({
      path: member.path,
      type: member.type ?? 'File',
      size: body.length,
      mode: 0o644,
      mtime: new Date(0),
      ...(member.linkpath !== undefined ? { linkpath: member.linkpath } : {}),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  const tar = Buffer.concat(blocks);
  return gzip ? gzipSync(tar) : tar;
}

/** One raw zip member. `declaredSize` lets a test lie about the uncompressed size. */
export interface ZipMember {
  readonly name: string;
  readonly body?: string | Uint8Array;
  readonly deflate?: boolean;
  /** Unix mode including file type bits, e.g. 0o120777 for a symlink. */
  readonly unixMode?: number;
  readonly declaredSize?: number;
}

/** Writes a minimal zip (local headers, data, central directory) by hand. */
export function rawZip(members: readonly ZipMember[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const member of members) {
    const body = member.body === undefined ? Buffer.alloc(0) : Buffer.from(member.body);
    const data = member.deflate ? deflateRawSync(body) : body;
    const name = Buffer.from(member.name, 'utf8');
    const method = member.deflate ? 8 : 0;
    const crc = crc32(body);
    const size = member.declaredSize ?? body.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE((3 << 8) | 20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(0x800, 8);
    entry.writeUInt16LE(method, 10);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(size, 24);
    entry.writeUInt16LE(name.length, 28);
    entry.writeUInt32LE(((member.unixMode ?? 0o100644) << 16) >>> 0, 38);
    entry.writeUInt32LE(offset, 42);
    parts.push(local, name, data);
    central.push(entry, name);
    offset += local.length + name.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

/** Writes `files` (relative path -> content) under `dir`, creating folders. */
export async function writeTree(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
}

/** Collects an async iterable. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
