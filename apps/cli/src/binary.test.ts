/**
 * The `kvfold` binary as an installed command: the compiled CLI (build.mjs, what `pnpm install`
 * runs) behind bin/kvfold.mjs, found on the PATH through a symlink in another folder, as `npm i -g`
 * and `pnpm link --global` install it, and started from a scratch directory that is not the
 * repository, so relative paths must resolve from there. Also `pnpm kvfold` (bin/kvfold-dev.mjs),
 * which must resolve them from the directory pnpm was started in.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type TestS3Server, startTestS3Server, TEST_S3_CREDENTIALS } from '@kvfold/storage/testing';

const CLI = fileURLToPath(new URL('..', import.meta.url));
const REPO = join(CLI, '..', '..');

let scratch = '';
let cwd = '';
let binDir = '';
let s3: TestS3Server;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command args` as a real process in `dir` with `env` added, and collects its output. */
function run(command: string, args: readonly string[], dir: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `kvfold ...` from the PATH, in the scratch directory. */
const kvfold = (args: readonly string[], env: NodeJS.ProcessEnv = {}) => run('kvfold', args, cwd, { PATH: `${binDir}${delimiter}${process.env.PATH}`, ...env });

before(async () => {
  const built = await run(process.execPath, ['build.mjs'], CLI);
  assert.equal(built.code, 0, built.stderr);
  scratch = await mkdtemp(join(tmpdir(), 'kvfold-binary-'));
  cwd = join(scratch, 'work');
  binDir = join(scratch, 'bin');
  await mkdir(cwd);
  await mkdir(binDir);
  await symlink(join(CLI, 'bin', 'kvfold.mjs'), join(binDir, 'kvfold'));
  s3 = await startTestS3Server();
});
after(async () => {
  await s3?.stop();
  await rm(scratch, { recursive: true, force: true });
});

test('kvfold --version prints the version of @kvfold/cli', async () => {
  const { version } = JSON.parse(await readFile(join(CLI, 'package.json'), 'utf8')) as { version: string };
  const r = await kvfold(['--version']);
  assert.deepEqual(r, { code: 0, stdout: `${version}\n`, stderr: '' });
});

test('kvfold --help lists the commands and writes nothing on stderr', async () => {
  const r = await kvfold(['--help']);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  for (const command of ['demo', 'fold', 'run', 'worker', 'serve', 'enqueue', 'models']) assert.match(r.stdout, new RegExp(`^  ${command}\\b`, 'm'));
});

test('the installed kvfold builds a model and folds a document named by relative paths from its directory', async () => {
  const built = await kvfold(['models', 'build', 'tiny-llama', '--out', 'models/tiny']);
  assert.equal(built.code, 0, built.stderr);
  assert.match(built.stdout, new RegExp(`built tiny-llama in ${join(cwd, 'models', 'tiny')} `));
  const text = 'The fold reads this document from the directory kvfold was started in.\n';
  await mkdir(join(cwd, 'docs'));
  await writeFile(join(cwd, 'docs', 'note.txt'), text);
  const r = await kvfold(['fold', 'docs/note.txt', '--model', 'models/tiny', '--chunk-size', '16', '--ask', 'What?', '--max-new-tokens', '4', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const result = JSON.parse(r.stdout) as { modelDir: string; tokens: number; steps: number; answers: { tokenIds: number[] }[] };
  assert.equal(result.modelDir, join(cwd, 'models', 'tiny'));
  assert.equal(result.tokens, Buffer.byteLength(text) + 1); // tiny-llama's tokenizer: one token a byte, after <s>
  assert.equal(result.steps, Math.ceil(result.tokens / 16));
  assert.equal(result.answers[0]?.tokenIds.length, 4);
});

test('the installed kvfold talks to an S3 store on Node 20 without the AWS SDK warning on stderr', async () => {
  const built = await kvfold(['models', 'build', 'tiny-llama', '--out', 'models/push']);
  assert.equal(built.code, 0, built.stderr);
  const uri = s3.uri('models/tiny');
  const r = await kvfold(['models', 'push', 'models/push', uri, '--json'], {
    KVFOLD_S3_ENDPOINT: s3.endpoint,
    KVFOLD_S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: TEST_S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_S3_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal((JSON.parse(r.stdout) as { uri: string }).uri, uri);
});

test('pnpm kvfold resolves relative paths from the directory pnpm was started in (INIT_CWD)', async () => {
  const r = await run(process.execPath, [join(CLI, 'bin', 'kvfold-dev.mjs'), 'models', 'build', 'recall', '--out', 'dev-model'], REPO, { INIT_CWD: cwd });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`built recall in ${join(cwd, 'dev-model')} `));
  assert.ok(JSON.parse(await readFile(join(cwd, 'dev-model', 'config.json'), 'utf8')));
});
