/**
 * What sources report besides their entries: files skipped, entries refused, files ignored.
 */
import type { ProducerErrorCode } from './errors.ts';
import type { IngestReport } from './report.ts';

/**
 * One file or archive entry read from an input. `path` is relative, '/'-separated. An entry with
 * `linkTo` is an archive hardlink: the same bytes as the earlier entry at that path.
 */
export type SourceEntry = { readonly path: string; readonly bytes: Uint8Array } | { readonly path: string; readonly linkTo: string };

/** Reporting callbacks bound to one input. */
export interface EntrySink {
  skip(path: string, reason: string): void;
  refuse(entry: string, code: ProducerErrorCode, reason: string): void;
  ignore(): void;
}

/** A sink that records into `report` under the name `input`. */
export function reportSink(report: IngestReport, input: string): EntrySink {
  return {
    skip: (path, reason) => report.skipped.push({ input, path, reason }),
    refuse: (entry, code, reason) => report.refused.push({ input, entry, reason, code }),
    ignore: () => {
      report.ignored += 1;
    },
  };
}
