/** The drift table (markdown), its JSON, and the files `kvfold drift --out` writes. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DriftResult } from './drift.ts';
import { driftSvg } from './plot.ts';

const sci = (x: number | undefined) => (x === undefined ? '—' : x.toExponential(2));

export function driftMarkdown(result: DriftResult, modelLabel: string, command?: string): string {
  const r = result.reference;
  const lines = [
    '# Per-step drift: folded vs. single-pass logits',
    '',
    `- model: \`${modelLabel}\`; ${result.tokens} tokens in chunks of ${result.chunkSize}; ${result.kv} KV`,
    `- reference: one cache-free forward pass over tokens [0, ${r.tokens}) (estimated ${r.estimatedMiB.toFixed(0)} MiB, limit ${r.limitMiB} MiB, ${(r.ms / 1000).toFixed(1)} s)${r.tokens < result.tokens ? `; steps past token ${r.tokens} have no reference` : ''}`,
    `- over ${result.overall.stepsCompared} steps: max |Δ logit| ${sci(result.overall.maxAbs)}, max KL ${sci(result.overall.maxKl)}, mean KL ${sci(result.overall.meanKl)} nats; fold ${(result.foldMs / 1000).toFixed(1)} s`,
    ...(command ? [`- command: \`${command}\``] : []),
    '',
    '| step | positions | max abs | mean KL | max KL | argmax agreement |',
    '|---|---|---|---|---|---|',
    ...result.steps.map(
      (s) =>
        `| ${s.step} | ${s.start}–${s.end - 1} | ${sci(s.maxAbs)} | ${sci(s.meanKl)} | ${sci(s.maxKl)} | ${s.argmaxAgreement === undefined ? '—' : `${(100 * s.argmaxAgreement).toFixed(1)}%`} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

/** Writes drift.md, drift.json and drift.svg under `dir`; returns their paths. */
export async function writeDrift(dir: string, result: DriftResult, modelLabel: string, command?: string): Promise<string[]> {
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const files: [string, string][] = [
    ['drift.md', driftMarkdown(result, modelLabel, command)],
    ['drift.json', `${JSON.stringify({ model: modelLabel, ...(command ? { command } : {}), ...result }, null, 2)}\n`],
    ['drift.svg', driftSvg(result, modelLabel)],
  ];
  for (const [name, body] of files) await writeFile(join(root, name), body);
  return files.map(([name]) => join(root, name));
}
