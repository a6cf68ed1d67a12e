// Plays a recording into a store at its recorded pace, scaled by a speed factor, with pause
// and single steps. The store throttles publishing as for live traffic, so a fast replay
// renders no more often than a live cluster.

import type { ReplayControl, ReplayInfo } from './controller.js';
import type { RecordedInput } from './record.js';
import type { ClusterStore } from './store.js';

const SPEEDS = [0.0625, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64];
const TICK_MS = 20;
/** Replay info (position, clock) is pushed to the UI at most this often. */
const INFO_EVERY_MS = 200;

export class ReplayPlayer implements ReplayControl {
  private position = 0;
  /** Recording time reached, ms. */
  private cursor = 0;
  private speedIndex = SPEEDS.indexOf(1);
  private paused = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastTick = 0;
  private lastInfo = 0;

  constructor(
    private readonly store: ClusterStore,
    private readonly inputs: readonly RecordedInput[],
    private readonly onInfo: (info: ReplayInfo) => void,
    private readonly now: () => number = Date.now,
  ) {}

  start(opts: { speed?: number; paused?: boolean } = {}): void {
    if (opts.speed !== undefined) {
      const i = SPEEDS.indexOf(opts.speed);
      this.speedIndex = i >= 0 ? i : SPEEDS.indexOf(1);
    }
    this.paused = opts.paused ?? false;
    this.lastTick = this.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.report(true);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  info(): ReplayInfo {
    return {
      speed: SPEEDS[this.speedIndex]!,
      paused: this.paused,
      position: this.position,
      total: this.inputs.length,
      elapsedMs: this.cursor,
      done: this.position >= this.inputs.length,
    };
  }

  togglePause(): void {
    this.paused = !this.paused;
    this.lastTick = this.now();
    this.report(true);
  }

  faster(): void {
    this.speedIndex = Math.min(SPEEDS.length - 1, this.speedIndex + 1);
    this.report(true);
  }

  slower(): void {
    this.speedIndex = Math.max(0, this.speedIndex - 1);
    this.report(true);
  }

  /** Pauses and plays exactly the next input, publishing it at once. */
  step(): void {
    this.paused = true;
    const next = this.inputs[this.position];
    if (next !== undefined) {
      this.store.ingest(next.input);
      this.cursor = next.t;
      this.position++;
    }
    this.store.flush();
    this.report(true);
  }

  /** Advances the clock; exposed for tests that drive time by hand. */
  tick(): void {
    const now = this.now();
    const elapsed = now - this.lastTick;
    this.lastTick = now;
    if (this.paused || this.position >= this.inputs.length) {
      this.report(false);
      return;
    }
    this.cursor += elapsed * SPEEDS[this.speedIndex]!;
    while (this.position < this.inputs.length && this.inputs[this.position]!.t <= this.cursor) {
      this.store.ingest(this.inputs[this.position]!.input);
      this.position++;
    }
    this.report(false);
  }

  private report(force: boolean): void {
    const now = this.now();
    if (!force && now - this.lastInfo < INFO_EVERY_MS) return;
    this.lastInfo = now;
    this.onInfo(this.info());
  }
}
