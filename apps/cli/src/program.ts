/**
 * The `kvfold` command tree. Each command lives in commands/ and calls into the packages; a
 * command's modules are imported inside its action, so building the tree (and `kvfold --help`)
 * loads only commander and the option parsers.
 */
import { Command, CommanderError } from 'commander';
import cliPackage from '../package.json' with { type: 'json' };
import { reportError } from './cli-error.ts';
import { registerBench } from './commands/bench.ts';
import { registerDemo } from './commands/demo.ts';
import { registerDistributed } from './commands/distributed.ts';
import { registerFold } from './commands/fold.ts';
import { registerModels } from './commands/models.ts';
import { registerNiah } from './commands/niah.ts';
import { registerRun } from './commands/run.ts';
import { registerStore } from './commands/store.ts';
import { registerWorker } from './commands/worker.ts';
import { registerDrift } from './commands/drift.ts';

export function buildProgram(): Command {
  const program = new Command('kvfold')
    .description('Fold documents longer than one forward pass through a frozen LLM, carrying the KV cache as the accumulator.')
    .version(cliPackage.version, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerDemo(program);
  registerModels(program);
  registerFold(program);
  registerRun(program);
  registerStore(program);
  registerWorker(program);
  registerBench(program);
  registerDistributed(program);
  registerNiah(program);
  registerDrift(program);
  return program;
}

/** Runs the CLI and returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    // A command that finished but wants a non-zero status (e.g. `run` stopped early) sets exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode; // commander already printed the message
    const { debugEnabled } = await import('./env.ts');
    return reportError(err, debugEnabled());
  }
}
