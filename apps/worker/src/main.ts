/** Entry of a queue worker process (`node --import tsx apps/worker/src/main.ts`); `kvfold worker` runs the same function in its own process. */
import { runWorker } from '@kvfold/runner';

await runWorker();
