#!/usr/bin/env node
/** Entry of the `kvfold` command (bin/kvfold.mjs runs its compiled form, bin/kvfold-dev.mjs its sources). */
import { runCli } from './program.ts';

// The AWS SDK warns on every Node below 22 when an S3 client is made (8 lines on stderr, from the
// first s3:// store on); its documented switch turns off that warning alone. Node 20 is supported
// here (package.json engines), so the warning says nothing a user can act on; set the variable to
// false to see it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ||= 'true';

process.exitCode = await runCli(process.argv);
