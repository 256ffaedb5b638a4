/**
 * Bull Board, BullMQ's dashboard, at /admin/queues (behind the API key like every other route).
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { KvfoldQueues } from '@kvfold/jobs';
import type { FastifyInstance } from 'fastify';
import { classify } from './errors.ts';

/** Where the dashboard is served. */
export const BULL_BOARD_PATH = '/admin/queues';

/** Mounts the dashboard over the documents and batches queues. */
export async function registerBullBoard(app: FastifyInstance, queues: KvfoldQueues): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  // @bull-board/fastify 9.10.1 pins @bull-board/api 9.10.1 while we install 9.10.2: the classes are
  // the same at run time, but TypeScript sees two declarations of one private field.
  type ServerAdapter = Parameters<typeof createBullBoard>[0]['serverAdapter'];
  createBullBoard({
    queues: [new BullMQAdapter(queues.documents), new BullMQAdapter(queues.batches)],
    serverAdapter: serverAdapter as unknown as ServerAdapter,
  });
  // The dashboard's plugin answers errors in its scope (a missing key's 401, a 429) with its own
  // handler; ours keeps them in the API's `{error: {code, message}}` shape.
  type DashboardStatus = ReturnType<Parameters<typeof serverAdapter.setErrorHandler>[0]>['status'];
  serverAdapter.setErrorHandler((err) => {
    const { status, code, message } = classify(err);
    if (status >= 500) app.log.error({ err }, 'queue dashboard request failed');
    return { status: status as DashboardStatus, body: { error: { code, message } } };
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
}
