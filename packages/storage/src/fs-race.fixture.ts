/**
 * Child process of the cross-process race test: races conditional puts on the given keys and
 * prints one JSON line of the keys it won.
 *
 *     node --import tsx fs-race.fixture.ts <root> <writerId> <key>...
 */
import { PreconditionFailedError } from './errors.ts';
import { FsObjectStore } from './fs-object-store.ts';

const [root, writer, ...keys] = process.argv.slice(2);
const store = new FsObjectStore(root as string);
const won: string[] = [];
await Promise.all(
  keys.map(async (key) => {
    try {
      await store.put(key, new TextEncoder().encode(writer), { ifNoneMatch: '*' });
      won.push(key);
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }),
);
process.stdout.write(`${JSON.stringify(won)}\n`);
