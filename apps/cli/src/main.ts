#!/usr/bin/env node
/** Entry of the `kvfold` command. */
import { runCli } from './program.ts';

process.exitCode = await runCli(process.argv);
