/** Test fixtures: model-zoo folders built into a temporary directory, removed when the process exits. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyLlamaSpec, type TinyLlamaOptions, type WriteModelOptions, writeModelFolder } from '@kvfold/model-zoo';

const root = mkdtempSync(join(tmpdir(), 'kvfold-onnx-test-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

/** Builds tiny-llama (with options) into a fresh folder and returns its path. */
export async function tinyLlamaFolder(name: string, spec: TinyLlamaOptions = {}, write: WriteModelOptions = {}): Promise<string> {
  const dir = join(root, name);
  await writeModelFolder(tinyLlamaSpec(spec), dir, write);
  return dir;
}

export const scratchDir = root;
