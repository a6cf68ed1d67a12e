// A short chaos run against real node processes (needs `npm run build`: nodes run from
// dist/). Two fixed seeds × 40 s on 3 nodes, every fault kind enabled.
import { describe, expect, it } from 'vitest';
import { runChaos, summarize } from './runner.js';

const SEEDS = [7, 11];
const DURATION_MS = 40_000;

describe('chaos', () => {
  for (const seed of SEEDS) {
    it(
      `seed ${seed}: linearizable, nothing acknowledged lost, replicas converge`,
      async () => {
        const report = await runChaos({ seed, nodes: 3, durationMs: DURATION_MS, clients: 5 });
        const summary = summarize(report);
        if (report.violations.length > 0) console.error(summary);
        expect(report.violations, summary).toEqual([]);
        expect(report.linearizability.ok, summary).toBe(true);
        expect(report.lostAckedWrites, summary).toEqual([]);
        expect(report.divergence, summary).toEqual([]);
        expect(report.converged, summary).toBe(true);
        // The run did something: faults were injected and operations succeeded.
        expect(report.faults.length, summary).toBeGreaterThanOrEqual(5);
        expect(report.faults.length - report.faultErrors, summary).toBeGreaterThanOrEqual(4);
        expect(report.ops.ok, summary).toBeGreaterThan(500);
        expect(report.ops.uniqueWritesAcked, summary).toBeGreaterThan(50);
      },
      DURATION_MS + 60_000,
    );
  }
});
