/** Entry of the REST service process (`node --import tsx apps/api/src/main.ts`); `kvfold serve` runs the same function in its own process. */
import { runApi } from '@kvfold/api-server';

await runApi();
