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
 *   pnpm bench:floor [--limit 131072] [--sizes 0.5,1,2,4,8] [--out file.json]
 */
import { writeFileSync } from 'node:fs';
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
if (values.out) writeFileSync(values.out, `${JSON.stringify({ limit, longestPiece: floor.longestPiece, rows }, null, 2)}\n`);
