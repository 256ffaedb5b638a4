import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ingest } from './ingest.ts';
import { collect, rawTar, rawZip, tempDir } from './test-fixtures.ts';

const MiB = 1024 * 1024;

describe('hostile archives', () => {
  let dir = '';
  let cleanup = async () => {};
  before(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  after(() => cleanup());

  const refusals = (run: ReturnType<typeof ingest>) => run.report.refused.map((r) => [r.entry, r.code]);

  it('tar: refuses escaping paths, links and devices, keeps the good entries', async () => {
    const file = join(dir, 'evil.tar.gz');
    await writeFile(
      file,
      rawTar(
        [
          { path: 'ok/first.txt', body: 'good one\n' },
          { path: '../../etc/passwd', body: 'root:x:0:0\n' },
          { path: '/etc/shadow', body: 'nope\n' },
          { path: 'ok/../../escape.txt', body: 'nope\n' },
          { path: 'C:/windows/win.ini', body: 'nope\n' },
          { path: 'ok/link', type: 'SymbolicLink', linkpath: '/etc/passwd' },
          { path: 'ok/hard', type: 'Link', linkpath: '../../etc/passwd' },
          { path: 'ok/fifo', type: 'FIFO' },
          { path: 'ok/dir', type: 'Directory' },
          { path: 'ok/second.txt', body: 'good two\n' },
        ],
        true,
      ),
    );
    const run = ingest([file]);
    const docs = await collect(run);
    assert.deepEqual(docs.map((d) => d.paths[0]), ['evil/ok/first.txt', 'evil/ok/second.txt']);
    assert.deepEqual(refusals(run), [
      ['../../etc/passwd', 'KVF_INGEST_ESCAPING_ENTRY'],
      ['/etc/shadow', 'KVF_INGEST_ESCAPING_ENTRY'],
      ['ok/../../escape.txt', 'KVF_INGEST_ESCAPING_ENTRY'],
      ['C:/windows/win.ini', 'KVF_INGEST_ESCAPING_ENTRY'],
      ['ok/link', 'KVF_INGEST_LINK_ENTRY'],
      ['ok/hard', 'KVF_INGEST_LINK_ENTRY'],
      ['ok/fifo', 'KVF_INGEST_SPECIAL_ENTRY'],
    ]);
    const reasons = run.report.refused.map((r) => r.reason);
    assert.match(reasons[0] ?? '', /'\.\.' segment escapes the archive root/);
    assert.match(reasons[1] ?? '', /absolute path/);
    assert.match(reasons[3] ?? '', /drive-letter/);
    assert.match(reasons[4] ?? '', /symlink to \/etc\/passwd \(symlinks are never followed\)/);
    assert.match(reasons[5] ?? '', /hardlink to \.\.\/\.\.\/etc\/passwd, outside the archive root/);
  });

  it('tar: stops at maxEntries and refuses the rest', async () => {
    const file = join(dir, 'many.tar');
    await writeFile(file, rawTar(Array.from({ length: 20 }, (_, i) => ({ path: `f${String(i).padStart(2, '0')}.txt`, body: `file ${i}\n` }))));
    const run = ingest([file], { limits: { maxEntries: 5 } });
    const docs = await collect(run);
    assert.equal(docs.length, 5);
    assert.deepEqual(refusals(run), [['f05.txt', 'KVF_INGEST_TOO_MANY_ENTRIES']]);
  });

  it('tar.gz: a high-ratio archive stops at the ratio cap; an over-size entry is refused alone', async () => {
    const file = join(dir, 'bomb.tar.gz');
    const zeros = 'a'.repeat(8 * MiB);
    await writeFile(
      file,
      rawTar(
        [
          { path: 'small.txt', body: 'fine\n' },
          { path: 'big.txt', body: zeros },
          { path: 'after.txt', body: 'never read\n' },
        ],
        true,
      ),
    );
    const run = ingest([file], { limits: { maxTotalRatio: 50 } });
    const docs = await collect(run);
    assert.deepEqual(docs.map((d) => d.paths[0]), ['bomb/small.txt']);
    assert.deepEqual(refusals(run), [['big.txt', 'KVF_INGEST_COMPRESSION_RATIO']]);

    // A poorly compressible over-size entry is passed over alone; the entries after it are read.
    const hexFile = join(dir, 'hex.tar.gz');
    await writeFile(
      hexFile,
      rawTar(
        [
          { path: 'small.txt', body: 'fine\n' },
          { path: 'big.txt', body: randomBytes(MiB).toString('hex') },
          { path: 'after.txt', body: 'read after the refusal\n' },
        ],
        true,
      ),
    );
    const sized = ingest([hexFile], { limits: { maxEntryBytes: MiB } });
    const kept = await collect(sized);
    assert.deepEqual(kept.map((d) => d.paths[0]), ['hex/after.txt', 'hex/small.txt']);
    assert.deepEqual(refusals(sized), [['big.txt', 'KVF_INGEST_ENTRY_TOO_LARGE']]);
  });

  it('zip: refuses escaping names and symlinks, keeps the good entries', async () => {
    const file = join(dir, 'evil.zip');
    await writeFile(
      file,
      rawZip([
        { name: 'good/a.txt', body: 'alpha\n' },
        { name: '../../etc/passwd', body: 'root\n' },
        { name: '/abs.txt', body: 'abs\n' },
        { name: 'good\\..\\..\\win.txt', body: 'backslashes\n' },
        { name: 'good/link', body: '/etc/passwd', unixMode: 0o120777 },
        { name: 'good/b.txt', body: 'beta\n', deflate: true },
      ]),
    );
    const run = ingest([file]);
    const docs = await collect(run);
    assert.deepEqual(docs.map((d) => [d.paths[0], d.text]), [['evil/good/a.txt', 'alpha\n'], ['evil/good/b.txt', 'beta\n']]);
    assert.deepEqual(refusals(run), [
      ['../../etc/passwd', 'KVF_INGEST_ESCAPING_ENTRY'],
      ['/abs.txt', 'KVF_INGEST_ESCAPING_ENTRY'],
      ['good/../../win.txt', 'KVF_INGEST_ESCAPING_ENTRY'],
      ['good/link', 'KVF_INGEST_LINK_ENTRY'],
    ]);
  });

  it('zip: a bomb entry is refused from its declared sizes without inflating it', async () => {
    const file = join(dir, 'bomb.zip');
    await writeFile(
      file,
      rawZip([
        { name: 'bomb.txt', body: Buffer.alloc(32 * MiB, 0x61), deflate: true },
        { name: 'ok.txt', body: 'still read\n' },
      ]),
    );
    const started = Date.now();
    const run = ingest([file]);
    const docs = await collect(run);
    assert.deepEqual(docs.map((d) => d.paths[0]), ['bomb/ok.txt']);
    assert.deepEqual(refusals(run), [['bomb.txt', 'KVF_INGEST_COMPRESSION_RATIO']]);
    assert.match(run.report.refused[0]?.reason ?? '', /expands \d+x .* over maxEntryRatio 200/);
    assert.ok(Date.now() - started < 2000);
  });

  it('zip: an entry that lies about its size is stopped at the cap while inflating', async () => {
    const file = join(dir, 'liar.zip');
    await writeFile(
      file,
      rawZip([
        { name: 'liar.txt', body: Buffer.alloc(8 * MiB, 0x62), deflate: true, declaredSize: 100 },
        { name: 'ok.txt', body: 'kept\n' },
      ]),
    );
    const run = ingest([file], { limits: { maxEntryRatio: 1e9, maxTotalRatio: 1e9, maxEntryBytes: 1024 } });
    const docs = await collect(run);
    assert.deepEqual(docs.map((d) => d.paths[0]), ['liar/ok.txt']);
    assert.deepEqual(refusals(run), [['liar.txt', 'KVF_INGEST_CORRUPT_ARCHIVE']]);
    assert.match(run.report.refused[0]?.reason ?? '', /too many bytes/);
  });

  it('zip: too many entries and too many total bytes stop the archive', async () => {
    const many = join(dir, 'many.zip');
    await writeFile(many, rawZip(Array.from({ length: 10 }, (_, i) => ({ name: `m${i}.txt`, body: `m${i}\n` }))));
    const run = ingest([many], { limits: { maxEntries: 3 } });
    assert.equal((await collect(run)).length, 3);
    assert.deepEqual(refusals(run), [['m3.txt', 'KVF_INGEST_TOO_MANY_ENTRIES']]);

    const total = ingest([many], { limits: { maxTotalBytes: 10 } });
    assert.equal((await collect(total)).length, 3);
    assert.deepEqual(refusals(total), [['m3.txt', 'KVF_INGEST_ARCHIVE_TOO_LARGE']]);
  });

  it('a nested archive is skipped with a reason, not unpacked', async () => {
    const file = join(dir, 'outer.zip');
    await writeFile(file, rawZip([{ name: 'inner.tar.gz', body: rawTar([{ path: 'x.txt', body: 'x\n' }], true) }, { name: 'y.txt', body: 'y\n' }]));
    const run = ingest([file]);
    assert.deepEqual((await collect(run)).map((d) => d.paths[0]), ['outer/y.txt']);
    assert.deepEqual(run.report.skipped.map((s) => [s.path, s.reason]), [['inner.tar.gz', 'nested archive (not unpacked; pass it as its own input)']]);
  });

  it('a corrupt archive is refused without losing the other inputs', async () => {
    const bad = join(dir, 'bad.zip');
    await writeFile(bad, Buffer.from('this is not a zip file at all'));
    const good = join(dir, 'good.jsonl');
    await writeFile(good, '{"text":"survives"}\n');
    const run = ingest([bad, good]);
    assert.deepEqual((await collect(run)).map((d) => d.text), ['survives']);
    assert.deepEqual(refusals(run), [['(archive)', 'KVF_INGEST_CORRUPT_ARCHIVE']]);
    assert.match(run.report.refused[0]?.reason ?? '', /^not a readable zip/);
  });
});
