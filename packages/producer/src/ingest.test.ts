import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { create } from 'tar';
import { sha256Hex } from '@kvfold/contract';
import { ProducerError } from './errors.ts';
import { ingest } from './ingest.ts';
import { collect, rawZip, tempDir, writeTree } from './test-fixtures.ts';

const LATIN1_CAFE = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x61, 0x75, 0x20, 0x6c, 0x61, 0x69, 0x74, 0x0a]);
const BINARY = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 1, 0]);

describe('ingest: directories', () => {
  let dir = '';
  let cleanup = async () => {};
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    await writeTree(join(dir, 'repo'), {
      '.gitignore': '*.log\nbuild/\n',
      'src/a.ts': 'export const a = 1;\n',
      'src/b.ts': 'export const b = 2;\n',
      'src/sub/.gitignore': '!keep.log\nsecret.ts\n',
      'src/sub/keep.log': 'kept by a deeper negation\n',
      'src/sub/drop.log': 'ignored by the root rule\n',
      'src/sub/secret.ts': 'ignored by the nested rule\n',
      'build/out.js': 'ignored directory\n',
      'app.log': 'ignored\n',
      '.git/HEAD': 'ref: refs/heads/main\n',
      'README.md': '# Repo\n',
      'logo.png': BINARY,
      'empty.txt': '',
      'latin1.txt': LATIN1_CAFE,
    });
    await symlink(join(dir, 'repo', 'README.md'), join(dir, 'repo', 'link.md'));
  });
  after(() => cleanup());

  it('honours .gitignore at every level, skips .git, binary, empty and symlinks; decodes Latin-1 as text', async () => {
    const run = ingest([join(dir, 'repo')]);
    const docs = await collect(run);
    assert.deepEqual(
      docs.map((d) => d.paths[0]),
      ['repo/.gitignore', 'repo/README.md', 'repo/latin1.txt', 'repo/src/a.ts', 'repo/src/b.ts', 'repo/src/sub/.gitignore', 'repo/src/sub/keep.log'],
    );
    assert.equal(docs.find((d) => d.paths[0] === 'repo/latin1.txt')?.text, 'café au lait\n');
    const readme = docs.find((d) => d.paths[0] === 'repo/README.md');
    assert.equal(readme?.text, '# Repo\n');
    assert.equal(readme?.docId, sha256Hex('# Repo\n'));
    const skipped = Object.fromEntries(run.report.skipped.map((s) => [s.path, s.reason]));
    assert.deepEqual(skipped, {
      'repo/empty.txt': 'empty file',
      'repo/link.md': 'symlink (not followed)',
      'repo/logo.png': 'binary file',
    });
    assert.equal(run.report.ignored, 5); // .git/, app.log, build/, src/sub/drop.log, src/sub/secret.ts
    assert.equal(run.report.documents, 7);
    assert.equal(run.report.files, 7);
    assert.deepEqual(run.report.refused, []);
  });

  it('groups a directory into one document per top-level directory, root files in one more, with sorted path headers', async () => {
    const docs = await collect(ingest([join(dir, 'repo')], { grouping: 'directory' }));
    assert.deepEqual(
      docs.map((d) => [d.name, d.paths]),
      [
        ['repo', ['repo/.gitignore', 'repo/README.md', 'repo/latin1.txt']],
        ['repo/src/', ['repo/src/a.ts', 'repo/src/b.ts', 'repo/src/sub/.gitignore', 'repo/src/sub/keep.log']],
      ],
    );
    const src = docs[1];
    assert.equal(
      src?.text,
      '===== repo/src/a.ts =====\nexport const a = 1;\n' +
        '===== repo/src/b.ts =====\nexport const b = 2;\n' +
        '===== repo/src/sub/.gitignore =====\n!keep.log\nsecret.ts\n' +
        '===== repo/src/sub/keep.log =====\nkept by a deeper negation\n',
    );
    assert.equal(src?.docId, sha256Hex(src?.text ?? ''));
  });

  it('throws naming every missing input before reading anything', async () => {
    await assert.rejects(collect(ingest([join(dir, 'nope'), join(dir, 'repo'), join(dir, 'nope2')])), (err: unknown) => {
      assert.ok(err instanceof ProducerError);
      assert.equal(err.code, 'KVF_INGEST_INPUT_NOT_FOUND');
      assert.match(err.message, /nope, .*nope2/);
      return true;
    });
  });
});

describe('ingest: archives and jsonl', () => {
  let dir = '';
  let cleanup = async () => {};
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    await writeTree(join(dir, 'tree'), {
      'proj/src/main.ts': 'console.log("main");\n',
      'proj/src/util.ts': 'export {};\n',
      'proj/logo.png': BINARY,
      'other/notes.md': 'notes\n',
      'top.txt': 'at the root\n',
    });
  });
  after(() => cleanup());

  it('reads a .tar.gz built with node-tar, grouping by top-level directory', async () => {
    const file = join(dir, 'corpus.tar.gz');
    await create({ gzip: true, file, cwd: join(dir, 'tree'), portable: true }, ['proj', 'other', 'top.txt']);
    const run = ingest([file], { grouping: 'directory' });
    const docs = await collect(run);
    assert.deepEqual(
      docs.map((d) => d.paths),
      [['corpus/top.txt'], ['corpus/other/notes.md'], ['corpus/proj/src/main.ts', 'corpus/proj/src/util.ts']],
    );
    assert.deepEqual(docs.map((d) => d.name), ['corpus', 'corpus/other/', 'corpus/proj/']);
    assert.equal(docs[2]?.text, '===== corpus/proj/src/main.ts =====\nconsole.log("main");\n===== corpus/proj/src/util.ts =====\nexport {};\n');
    assert.deepEqual(run.report.skipped, [{ input: file, path: 'proj/logo.png', reason: 'binary file' }]);
  });

  it('reads a .zip, one document per file', async () => {
    const file = join(dir, 'corpus.zip');
    if (existsSync('/usr/bin/zip')) {
      execFileSync('zip', ['-qr', file, 'proj', 'other', 'top.txt'], { cwd: join(dir, 'tree') });
    } else {
      await writeFile(file, rawZip([
        { name: 'proj/src/main.ts', body: 'console.log("main");\n', deflate: true },
        { name: 'proj/src/util.ts', body: 'export {};\n' },
        { name: 'proj/logo.png', body: BINARY },
        { name: 'other/notes.md', body: 'notes\n' },
        { name: 'top.txt', body: 'at the root\n' },
      ]));
    }
    const run = ingest([file]);
    const docs = await collect(run);
    assert.deepEqual(docs.map((d) => d.paths[0]), ['corpus/other/notes.md', 'corpus/proj/src/main.ts', 'corpus/proj/src/util.ts', 'corpus/top.txt']);
    assert.equal(docs.find((d) => d.paths[0] === 'corpus/proj/src/main.ts')?.text, 'console.log("main");\n');
    assert.deepEqual(run.report.skipped.map((s) => [s.path, s.reason]), [['proj/logo.png', 'binary file']]);
  });

  it('reads jsonl, refusing a bad line by number and keeping the rest', async () => {
    const file = join(dir, 'docs.jsonl');
    await writeFile(
      file,
      [
        JSON.stringify({ id: 'd1', text: 'first' }),
        '{"text": "broken',
        '',
        JSON.stringify({ path: 'logs/a.log', text: 'second' }),
        JSON.stringify({ id: 'd3' }),
        JSON.stringify({ text: 'third' }),
        JSON.stringify({ text: '   ' }),
      ].join('\n'),
    );
    const run = ingest([file]);
    const docs = await collect(run);
    assert.deepEqual(docs.map((d) => [d.paths[0], d.text]), [['d1', 'first'], ['logs/a.log', 'second'], ['docs.jsonl#L6', 'third']]);
    assert.deepEqual(run.report.refused.map((r) => [r.entry, r.code]), [
      ['line 2', 'KVF_INGEST_JSONL_BAD_LINE'],
      ['line 5', 'KVF_INGEST_JSONL_BAD_LINE'],
    ]);
    assert.match(run.report.refused[0]?.reason ?? '', /^invalid JSON/);
    assert.match(run.report.refused[1]?.reason ?? '', /text: must be a string/);
    assert.deepEqual(run.report.skipped.map((s) => s.path), ['docs.jsonl#L7']);
  });

  it('reads a plain file input as one document', async () => {
    const file = join(dir, 'tree', 'top.txt');
    await mkdir(join(dir, 'x'), { recursive: true });
    const docs = await collect(ingest([file], { grouping: 'directory' }));
    assert.deepEqual(docs.map((d) => [d.paths, d.text]), [[['top.txt'], 'at the root\n']]);
  });
});
