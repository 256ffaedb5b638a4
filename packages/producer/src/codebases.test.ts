import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { link, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { FsObjectStore } from '@kvfold/storage';
import { documentName } from './grouping.ts';
import { ingest } from './ingest.ts';
import { packTree } from './pack-tree.ts';
import { summarizeReport, summaryLine } from './report.ts';
import { collect, rawTar, tempDir, writeTree } from './test-fixtures.ts';
import { uploadCorpus } from './upload.ts';

/** A small codebase: a root README, src/ with a nested dir, docs/, and one file too big to share a document. */
const TREE: Record<string, string> = {
  'README.md': '# App\n',
  'src/index.ts': `${'export const a = 1;\n'.repeat(20)}`,
  'src/util/math.ts': `${'export const b = 2;\n'.repeat(20)}`,
  'src/util/text.ts': `${'export const c = 3;\n'.repeat(20)}`,
  'docs/guide.md': `${'Read me.\n'.repeat(10)}`,
  'data/big.txt': `${'x'.repeat(3000)}\n`,
};

describe('codebases: grouping, identity, links, refusals', () => {
  let dir = '';
  let cleanup = async () => {};
  let tree = '';
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    tree = join(dir, 'app');
    await writeTree(tree, TREE);
  });
  after(() => cleanup());

  const tarOf = (name: string, cwd: string, members: string[]) => {
    const file = join(dir, name);
    execFileSync('tar', ['-czf', file, '-C', cwd, ...members]);
    return file;
  };

  it('directory: one document per top-level directory for a folder and for an archive of it, the same documents', async () => {
    const fromFolder = await collect(ingest([tree], { grouping: 'directory' }));
    assert.deepEqual(
      fromFolder.map((d) => [d.name, d.paths]),
      [
        ['app', ['app/README.md']],
        ['app/data/', ['app/data/big.txt']],
        ['app/docs/', ['app/docs/guide.md']],
        ['app/src/', ['app/src/index.ts', 'app/src/util/math.ts', 'app/src/util/text.ts']],
      ],
    );
    // Archived from inside the tree (entries `src/...`) or from above it (`app/src/...`): the archive's name roots the paths.
    const inside = await collect(ingest([tarOf('app.tar.gz', tree, ['.'])], { grouping: 'directory' }));
    const above = await collect(ingest([tarOf('app.tgz', dir, ['app'])], { grouping: 'directory' }));
    for (const docs of [inside, above]) assert.deepEqual(docs.map((d) => [d.name, d.paths, d.docId]), fromFolder.map((d) => [d.name, d.paths, d.docId]));
  });

  it('auto: packs directories that fit, splits the largest recursively, a file over the budget alone', async () => {
    // 1,100 bytes of budget (an upper bound on tokens): the tree and src/ (1,295 bytes packed) are split,
    // src/util/ (866) fits whole; data/big.txt (3,030) is over the budget alone.
    const run = ingest([tree], { grouping: 'auto', tokenBudget: { maxTokens: 1100 } });
    const docs = await collect(run);
    assert.deepEqual(
      docs.map((d) => [d.name, d.paths]),
      [
        ['app/README.md', ['app/README.md']],
        ['app/data/big.txt', ['app/data/big.txt']],
        ['app/docs/', ['app/docs/guide.md']],
        ['app/src/index.ts', ['app/src/index.ts']],
        ['app/src/util/', ['app/src/util/math.ts', 'app/src/util/text.ts']],
      ],
    );
    const small = await collect(ingest([tree], { grouping: 'auto', tokenBudget: { maxTokens: 500 } }));
    assert.deepEqual(small.map((d) => d.name).slice(-3), ['app/src/index.ts', 'app/src/util/math.ts', 'app/src/util/text.ts']);
    const packed = await collect(ingest([tree], { grouping: 'auto', tokenBudget: { maxTokens: 1500 } }));
    assert.deepEqual(packed.map((d) => d.name), ['app/README.md', 'app/data/big.txt', 'app/ (4 files: app/docs/guide.md .. app/src/util/text.ts)']);
    for (const d of docs) if (d.name !== 'app/data/big.txt') assert.ok(d.bytes.byteLength <= 1100 - 3, `${d.name} has ${d.bytes.byteLength} bytes`);
    assert.match(docs[4]?.text ?? '', /^===== app\/src\/util\/math\.ts =====\n/);
    // The whole tree fits the default budget: one document, its paths in order.
    const whole = await collect(ingest([tree], { grouping: 'auto' }));
    assert.deepEqual(whole.map((d) => [d.name, d.paths.length]), [['app/', 6]]);
  });

  it('auto: the last files of a split directory share a document with the siblings after it', async () => {
    // lib/ (1,357 bytes packed) is over 1,100 and split: a.txt alone, then b.txt and c.txt, which
    // z.md (after lib/ at the root) joins instead of making a document of its own.
    const packedTree = join(dir, 'packed');
    await writeTree(packedTree, { 'lib/a.txt': `${'a'.repeat(599)}\n`, 'lib/b.txt': `${'b'.repeat(499)}\n`, 'lib/c.txt': 'c\n', 'z.md': 'z\n' });
    const docs = await collect(ingest([packedTree], { grouping: 'auto', tokenBudget: { maxTokens: 1100 } }));
    assert.deepEqual(
      docs.map((d) => [d.name, d.paths]),
      [
        ['packed/lib/a.txt', ['packed/lib/a.txt']],
        ['packed/ (3 files: packed/lib/b.txt .. packed/z.md)', ['packed/lib/b.txt', 'packed/lib/c.txt', 'packed/z.md']],
      ],
    );
    for (const d of docs) assert.ok(d.bytes.byteLength <= 1100 - 3, `${d.name} has ${d.bytes.byteLength} bytes`);
  });

  it('refuses a document proven too long at ingest, named by its group, without building it', async () => {
    // 8 bytes at most per token: data/ (3,030 bytes) needs >= 379 tokens, over 300; src/ (1,295) needs >= 162 and may fit.
    const run = ingest([tree], { grouping: 'directory', tokenBudget: { maxTokens: 300, maxTokenBytes: 8 } });
    const docs = await collect(run);
    assert.deepEqual(docs.map((d) => d.name), ['app', 'app/docs/', 'app/src/']);
    assert.deepEqual(run.report.refused.map((r) => [r.entry, r.code]), [['app/data/', 'KVF_INGEST_DOCUMENT_TOO_LONG']]);
    assert.match(run.report.refused[0]?.reason ?? '', /^at least 379 tokens \(3030 bytes, at most 8 bytes per token .* over maxTokensPerDocument 300/);
    // A worker knows a document by its paths only; it names a group by the directory they share.
    assert.equal(documentName(docs[2]?.paths ?? []), 'app/src/ (3 files: app/src/index.ts .. app/src/util/text.ts)');
    assert.equal(documentName(['app/README.md']), 'app/README.md');
    // Without the vocabulary nothing is proven too long: the document goes to the worker, which counts.
    const unbounded = ingest([tree], { grouping: 'directory', tokenBudget: { maxTokens: 300 } });
    assert.equal((await collect(unbounded)).length, 4);
  });

  it('a folder, a tar of it and the tar enqueue streams are one corpus', async () => {
    const store = new FsObjectStore(join(dir, 'store'));
    const folder = await uploadCorpus(store, ingest([tree], { grouping: 'auto' }), { grouping: 'auto' });
    const tarred = await uploadCorpus(store, ingest([tarOf('app.tar', dir, ['app'])], { grouping: 'auto' }), { grouping: 'auto' });
    const packed = packTree(tree);
    const streamed = join(dir, 'streamed', packed.name);
    execFileSync('mkdir', ['-p', join(dir, 'streamed')]);
    await pipeline(packed.stream, createWriteStream(streamed));
    const sent = await uploadCorpus(store, ingest([streamed], { grouping: 'auto' }), { grouping: 'auto' });
    assert.equal(tarred.corpusId, folder.corpusId);
    assert.equal(sent.corpusId, folder.corpusId);
    assert.equal(tarred.uploadedShards, 0);
  });

  it('tar: a hardlink to an earlier file of the archive is the same content under both paths; others are refused', async () => {
    const linked = join(dir, 'pnpm');
    await writeTree(linked, { 'store/pkg/index.js': 'module.exports = 1;\n' });
    await writeTree(linked, { 'node_modules/.keep': 'k\n' });
    await link(join(linked, 'store/pkg/index.js'), join(linked, 'node_modules/index.js'));
    const file = join(dir, 'pnpm.tar');
    execFileSync('tar', ['-cf', file, '-C', dir, 'pnpm/store', 'pnpm/node_modules']);
    const run = ingest([file]);
    const docs = await collect(run);
    assert.deepEqual(run.report.refused, []);
    assert.deepEqual(docs.map((d) => [d.paths[0], d.text]), [
      ['pnpm/node_modules/.keep', 'k\n'],
      ['pnpm/node_modules/index.js', 'module.exports = 1;\n'],
      ['pnpm/store/pkg/index.js', 'module.exports = 1;\n'],
    ]);
    // A link to an entry that comes later, or is not there, is refused; a symlink always is.
    const bad = join(dir, 'bad.tar');
    await writeFile(bad, rawTar([
      { path: 'early', type: 'Link', linkpath: 'late.txt' },
      { path: 'late.txt', body: 'late\n' },
      { path: 'sym', type: 'SymbolicLink', linkpath: 'late.txt' },
    ]));
    const badRun = ingest([bad]);
    assert.deepEqual((await collect(badRun)).map((d) => d.paths[0]), ['bad/late.txt']);
    assert.deepEqual(badRun.report.refused.map((r) => [r.entry, r.code]), [['early', 'KVF_INGEST_LINK_ENTRY'], ['sym', 'KVF_INGEST_LINK_ENTRY']]);
    assert.match(badRun.report.refused[0]?.reason ?? '', /hardlink to late\.txt, which is not an earlier text file/);
  });

  it('a garbage .tar.gz is one refusal; many refusals of one reason are one summary line', async () => {
    const garbage = join(dir, 'garbage.tar.gz');
    await writeFile(garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
    const run = ingest([garbage]);
    await collect(run);
    assert.equal(run.report.refused.length, 1);
    assert.equal(run.report.refused[0]?.code, 'KVF_INGEST_CORRUPT_ARCHIVE');

    const links = join(dir, 'links.tar');
    await writeFile(links, rawTar(Array.from({ length: 50 }, (_, i) => ({ path: `l${String(i).padStart(2, '0')}`, type: 'SymbolicLink' as const, linkpath: '/etc/passwd' }))));
    const many = ingest([links, garbage]);
    await collect(many);
    const lines = summarizeReport(many.report).map(summaryLine);
    assert.deepEqual(lines, [
      `refused 50 entries [KVF_INGEST_LINK_ENTRY] (symlink to /etc/passwd (symlinks are never followed)): ${links}: l00, ${links}: l01, ${links}: l02 and 47 more`,
      `refused 1 entry [KVF_INGEST_CORRUPT_ARCHIVE] (${many.report.refused[50]?.reason}): ${garbage}: ${many.report.refused[50]?.entry}`,
    ]);
  });
});
