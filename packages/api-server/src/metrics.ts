/**
 * Prometheus metrics of the API, built per app instance on its own registry:
 *
 * | metric                                      | type      | source                                  |
 * |---------------------------------------------|-----------|-----------------------------------------|
 * | kvfold_api_http_requests_total              | counter   | this process: method, route, status     |
 * | kvfold_api_http_request_duration_seconds    | histogram | this process: method, route, status     |
 * | kvfold_queue_jobs                           | gauge     | BullMQ at scrape time: queue, state     |
 * | kvfold_fold_tokens_total                    | counter   | FoldMetrics in Redis (all workers)      |
 * | kvfold_fold_step_seconds                    | histogram | FoldMetrics in Redis (all workers)      |
 * | kvfold_checkpoint_bytes_total               | counter   | FoldMetrics in Redis (all workers)      |
 * | kvfold_documents_total                      | counter   | FoldMetrics in Redis: status            |
 *
 * The fleet-wide series are read from Redis on each scrape (see FoldMetrics in @kvfold/jobs), so any
 * API replica reports the same totals; scrape one replica, or aggregate with max().
 */
import type { FoldMetrics, FoldMetricsSnapshot, KvfoldQueues } from '@kvfold/jobs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Job states reported per queue. */
const QUEUE_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'waiting-children', 'completed', 'failed'] as const;

/** Request latency buckets (seconds): health checks take ~1 ms, uploads of large corpora minutes. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 300];

/** A metric whose values are computed at scrape time (prom-client's custom-metric protocol). */
interface ScrapedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly values: Array<{ value: number; labels?: Record<string, string>; metricName?: string }>;
}

/** The API's registry and the hook that measures requests. */
export interface ApiMetrics {
  readonly registry: Registry;
  onResponse(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}

/** Builds the registry over `queues` and the fleet's fold metrics. */
export function createMetrics(queues: KvfoldQueues, fold: FoldMetrics): ApiMetrics {
  const registry = new Registry();
  const labelNames = ['method', 'route', 'status'] as const;
  const requests = new Counter({ name: 'kvfold_api_http_requests_total', help: 'HTTP requests answered', labelNames, registers: [registry] });
  const duration = new Histogram({
    name: 'kvfold_api_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames,
    buckets: HTTP_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: 'kvfold_queue_jobs',
    help: 'jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const queue of [queues.documents, queues.batches]) {
        const counts = await queue.getJobCounts(...QUEUE_STATES);
        for (const state of QUEUE_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
      }
    },
  });

  // One Redis read per scrape feeds the four fleet-wide metrics.
  let snapshot: Promise<FoldMetricsSnapshot> | undefined;
  const read = () => {
    snapshot ??= fold.read().finally(() => setImmediate(() => { snapshot = undefined; }));
    return snapshot;
  };
  const scraped = (name: string, help: string, type: ScrapedMetric['type'], values: (s: FoldMetricsSnapshot) => ScrapedMetric['values']) => {
    registry.registerMetric({
      name,
      help,
      type,
      async get() {
        return { name, help, type, values: values(await read()), aggregator: 'max' };
      },
    } as unknown as Parameters<Registry['registerMetric']>[0]);
  };
  scraped('kvfold_fold_tokens_total', 'tokens folded by all workers', 'counter', (s) => [{ value: s.tokens }]);
  scraped('kvfold_checkpoint_bytes_total', 'checkpoint bytes uploaded by all workers', 'counter', (s) => [{ value: s.checkpointBytes }]);
  scraped('kvfold_documents_total', 'documents finished by all workers, by status', 'counter', (s) =>
    Object.entries(s.documents).map(([status, value]) => ({ value, labels: { status } })),
  );
  scraped('kvfold_fold_step_seconds', 'latency of one fold step, all workers', 'histogram', (s) => [
    ...s.steps.buckets.map((b) => ({ value: b.count, labels: { le: b.le }, metricName: 'kvfold_fold_step_seconds_bucket' })),
    { value: s.steps.sum, metricName: 'kvfold_fold_step_seconds_sum' },
    { value: s.steps.count, metricName: 'kvfold_fold_step_seconds_count' },
  ]);

  return {
    registry,
    async onResponse(request, reply) {
      const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
      requests.inc(labels);
      duration.observe(labels, reply.elapsedTime / 1000);
    },
  };
}
