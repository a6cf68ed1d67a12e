import { afterEach, describe, expect, it } from 'vitest';
import { Metrics, registerProcessMetrics } from '../../src/server/metrics.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The value of an unlabelled sample in a rendered exposition. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no sample ${name} in:\n${text}`);
  return Number(line.slice(name.length + 1));
}

describe('process metrics', () => {
  let stop: (() => void) | undefined;
  afterEach(() => stop?.());

  it('report memory and CPU of the process', async () => {
    const registry = new Metrics();
    stop = registerProcessMetrics(registry);
    const text = registry.render();
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(1024 * 1024);
    expect(sample(text, 'nodejs_external_memory_bytes')).toBeGreaterThan(0);
    const cpu = sample(text, 'process_cpu_seconds_total');
    expect(cpu).toBeGreaterThan(0);
    const spinUntil = Date.now() + 30;
    while (Date.now() < spinUntil);
    expect(sample(registry.render(), 'process_cpu_seconds_total')).toBeGreaterThanOrEqual(cpu + 0.02);
  });

  it('report a stall of the event loop once, in the scrape after it', async () => {
    const registry = new Metrics();
    stop = registerProcessMetrics(registry);
    await sleep(50);
    const idle = registry.render();
    expect(sample(idle, 'nodejs_eventloop_lag_max_seconds')).toBeLessThan(0.06);
    expect(sample(idle, 'nodejs_eventloop_lag_p50_seconds')).toBeLessThan(0.01);

    const blockUntil = Date.now() + 150;
    while (Date.now() < blockUntil);
    await sleep(40);
    const stalled = registry.render();
    expect(sample(stalled, 'nodejs_eventloop_lag_max_seconds')).toBeGreaterThanOrEqual(0.12);
    // One late sample among a few: the median stays small.
    expect(sample(stalled, 'nodejs_eventloop_lag_p50_seconds')).toBeLessThan(0.01);

    // The scrape reset the window: the next one no longer sees the stall.
    await sleep(50);
    expect(sample(registry.render(), 'nodejs_eventloop_lag_max_seconds')).toBeLessThan(0.1);
  });

  it('report the share of time the event loop was busy since the previous scrape', async () => {
    const registry = new Metrics();
    stop = registerProcessMetrics(registry);
    registry.render();
    // Idle but for the lag timer: waiting for I/O nearly all the time.
    await sleep(200);
    expect(sample(registry.render(), 'nodejs_eventloop_utilization')).toBeLessThan(0.3);
    // Busy 150 ms of about 200.
    await sleep(50);
    const busyUntil = Date.now() + 150;
    while (Date.now() < busyUntil);
    const busy = sample(registry.render(), 'nodejs_eventloop_utilization');
    expect(busy).toBeGreaterThan(0.5);
    expect(busy).toBeLessThanOrEqual(1);
  });
});
