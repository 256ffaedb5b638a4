/**
 * llama.cpp itself on a GGUF file of a small random checkpoint, beside our engine on the same
 * checkpoint imported: the same greedy tokens and last-position logits. It needs node-llama-cpp in
 * the benchmark's peer folder (`pnpm bench:llamacpp` installs it there) and is skipped without it,
 * so the suite never reaches the network. One llama.cpp session a process (node-llama-cpp's second
 * one in a process logs past our logger): the timed run is the benchmark's (`pnpm bench:llamacpp`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { importCheckpoint, writeCheckpoint } from '@kvfold/model-zoo';
import { randomCheckpointContents } from '../precision/shapes.ts';
import { writeLlamaGguf } from './gguf-writer.ts';
import { DEFAULT_PEER_DIR, installedPeerVersion, NODE_LLAMA_CPP_VERSION } from './install.ts';
import { llamaCppGreedy } from './llamacpp-run.ts';
import { oursGreedy } from './ours-greedy.ts';
import { smallLlama } from './test-support.ts';

const repo = resolve(fileURLToPath(import.meta.url), '../../../../..');
const peerDir = join(repo, DEFAULT_PEER_DIR);
const skip = installedPeerVersion(peerDir) === NODE_LLAMA_CPP_VERSION ? false : `node-llama-cpp ${NODE_LLAMA_CPP_VERSION} is not installed in ${peerDir} (pnpm bench:llamacpp installs it)`;

const config = smallLlama({ vocab_size: 512, hidden_size: 128, intermediate_size: 256 });

const root = mkdtempSync(join(tmpdir(), 'kvfold-llamacpp-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('llama.cpp on our F32 GGUF continues a prompt with our greedy tokens, its logits within 1e-4 of ours (flash attention off)', { skip }, async () => {
  const checkpoint = join(root, 'checkpoint');
  writeCheckpoint(randomCheckpointContents(config, 3), checkpoint, { family: 'llama', dtype: 'BF16' });
  await importCheckpoint(checkpoint, join(root, 'f32'), { dtype: 'f32' });
  const gguf = join(root, 'f32.gguf');
  writeLlamaGguf(checkpoint, gguf, 'F32');
  const greedy = { tokens: 40, generate: 16, chunkSize: 16, threads: 1 };
  const ours = await oursGreedy({ modelDir: join(root, 'f32'), ...greedy });
  const peer = await llamaCppGreedy({ peerDir, gguf, kv: 'f32', vocab: config.vocab_size, flashAttention: false, ...greedy });
  assert.deepEqual(peer.tokenIds, ours.tokenIds);
  const diff = Math.max(...ours.lastLogits.map((v, i) => Math.abs(v - (peer.lastLogits[i] as number))));
  assert.ok(diff < 1e-4, `max |dlogit| ${diff}`);
});
