// Entry of a worker thread that runs a TypeScript module: Node does not carry the parent's
// `--import tsx` loader into workers, so register it here, then import the module named in
// workerData.entry. Plain JavaScript because it runs before any loader exists.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
