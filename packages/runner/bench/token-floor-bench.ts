/**
 * What it costs to learn that a document is over the token limit: the proof from the vocabulary
 * (`provenTooLong`: the size bound, then the fewest pieces the text can be cut into) beside the
 * tokenizer run a worker would otherwise make (`TextTokenizer.encode`, @huggingface/tokenizers),
 * on prose of 0.5 to 8 MB against a limit of 131,072 tokens.
 *
 * The vocabulary is the byte-level fixture (every corpus word one token) with one 64-byte piece
 * added, so the size bound alone proves no document under 8 MB too long, as with a real
 * vocabulary's long entries.
 *
 * Then the floor on real text: a byte-level BPE whose vocabulary holds every word of this
 * repository's TypeScript sources (with and without a leading space), and each source file counted
 * by the tokenizer and bounded by the floor: the floor must never exceed the count (a violation
 * exits 1), and how close it comes is printed.
 *
 *   pnpm bench:floor [--limit 131072] [--sizes 0.5,1,2,4,8] [--out file.json]
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_CORPUS, byteLevelBpe, fixtureTokenizer } from '@kvfold/onnx/testing';
import { TokenFloor, bytesThatFit, provenTooLong, tokenBounds } from '@kvfold/producer';

const { values } = parseArgs({ options: { limit: { type: 'string', default: '131072' }, sizes: { type: 'string', default: '0.5,1,2,4,8' }, out: { type: 'string' } } });
const limit = Number(values.limit);
const sizes = (values.sizes as string).split(',').map(Number);

const files = byteLevelBpe();
const json = files.tokenizerJson as { model: { vocab: Record<string, number>; merges: string[] } };
// One long piece, `=` x 64, built by merges as a real vocabulary builds its long runs.
for (let n = 2; n <= 64; n *= 2) {
  json.model.merges.push(`${'='.repeat(n / 2)} ${'='.repeat(n / 2)}`);
  json.model.vocab['='.repeat(n)] = Object.keys(json.model.vocab).length;
}
const floor = TokenFloor.of(json);
if (!floor) throw new Error('the fixture vocabulary gives no floor');
const tokenizer = fixtureTokenizer(files);
const budget = { maxTokens: limit, maxTokenBytes: floor.longestPiece, floor };

const rows = [];
for (const mb of sizes) {
  const bytes = Math.round(mb * 1024 * 1024);
  const text = `${DEFAULT_CORPUS}\n`.repeat(Math.ceil(bytes / (DEFAULT_CORPUS.length + 1))).slice(0, bytes);
  const bySize = tokenBounds(bytes, budget).lower;
  let t = performance.now();
  const proven = provenTooLong(text, budget);
  const floorMs = performance.now() - t;
  t = performance.now();
  const tokens = tokenizer.encode(text, { document: true }).ids.length;
  const tokenizeMs = performance.now() - t;
  rows.push({ mb, bytes, tokens, sizeBound: bySize, proven: proven ?? null, floorMs: Math.round(floorMs * 10) / 10, tokenizeMs: Math.round(tokenizeMs), speedup: Math.round(tokenizeMs / floorMs) });
}

console.log(`limit ${limit} tokens; longest piece ${floor.longestPiece} bytes; a document under ${bytesThatFit(limit)} bytes surely fits`);
console.log('   MB      tokens   size bound   proven >=   floor ms   tokenize ms   x faster');
for (const r of rows) {
  console.log(
    `${String(r.mb).padStart(5)} ${String(r.tokens).padStart(11)} ${String(r.sizeBound).padStart(12)} ${String(r.proven ?? '-').padStart(11)} ${String(r.floorMs).padStart(10)} ${String(r.tokenizeMs).padStart(13)} ${String(r.speedup).padStart(10)}`,
  );
}

// The floor on real text: this repository's sources.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const sources: string[] = [];
for (const area of ['packages', 'apps']) {
  for (const pkg of readdirSync(join(root, area))) {
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (e.name.endsWith('.ts')) sources.push(readFileSync(join(dir, e.name), 'utf8'));
      }
    };
    try {
      walk(join(root, area, pkg, 'src'));
    } catch {}
  }
}
const codeFiles = byteLevelBpe({ corpus: sources.join('\n') });
const codeVocab = Object.keys((codeFiles.tokenizerJson as { model: { vocab: object } }).model.vocab).length;
let t = performance.now();
const codeFloor = TokenFloor.of(codeFiles.tokenizerJson);
if (!codeFloor) throw new Error('the code vocabulary gives no floor');
codeFloor.lowerBound('warm up: builds the trie');
const buildMs = performance.now() - t;
const codeTokenizer = fixtureTokenizer(codeFiles);
let floorMs = 0;
let tokenizeMs = 0;
let tokens = 0;
let floorTokens = 0;
const ratios: number[] = [];
const violations: number[] = [];
for (const [i, text] of sources.entries()) {
  t = performance.now();
  const n = codeTokenizer.encode(text, { document: false }).ids.length;
  tokenizeMs += performance.now() - t;
  t = performance.now();
  const f = codeFloor.lowerBound(text);
  floorMs += performance.now() - t;
  if (f === undefined) continue;
  if (f > n) violations.push(i);
  tokens += n;
  floorTokens += f;
  if (n > 0) ratios.push(f / n);
}
ratios.sort((a, b) => a - b);
const bytes = sources.reduce((n, s) => n + Buffer.byteLength(s), 0);
const code = {
  files: sources.length,
  mb: Math.round((bytes / 1e6) * 100) / 100,
  vocabulary: codeVocab,
  longestPiece: codeFloor.longestPiece,
  trieBuildMs: Math.round(buildMs),
  tokens,
  floorTokens,
  floorOverTokens: Math.round((floorTokens / tokens) * 1000) / 1000,
  worstFile: Math.round((ratios[0] ?? 0) * 1000) / 1000,
  medianFile: Math.round((ratios[Math.floor(ratios.length / 2)] ?? 0) * 1000) / 1000,
  floorMBps: Math.round((bytes / 1e6 / (floorMs / 1000)) * 10) / 10,
  tokenizeMBps: Math.round((bytes / 1e6 / (tokenizeMs / 1000)) * 10) / 10,
  violations: violations.length,
};
console.log(
  `\nthis repository's sources: ${code.files} files, ${code.mb} MB, a vocabulary of ${code.vocabulary} pieces (longest ${code.longestPiece} bytes, trie built in ${code.trieBuildMs} ms)\n` +
    `  floor / tokens: ${code.floorOverTokens} over all (${code.floorTokens} / ${code.tokens}), worst file ${code.worstFile}, median file ${code.medianFile}\n` +
    `  floor ${code.floorMBps} MB/s, tokenizer ${code.tokenizeMBps} MB/s; floor over the real count: ${code.violations} files`,
);
if (values.out) writeFileSync(values.out, `${JSON.stringify({ limit, longestPiece: floor.longestPiece, rows, code }, null, 2)}\n`);
if (violations.length > 0) process.exitCode = 1;
