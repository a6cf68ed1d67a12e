// `--record FILE`: every input the store receives, as NDJSON with its time offset, so a
// session can be replayed in the same dashboard. Lines are written in batches (one write per
// 100 ms at most) so that recording heavy traffic costs one syscall, not one per event.

import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { MemberSchema, NodeEventSchema, NodeHelloSchema, NodeStateSchema } from '../protocol/control.js';
import type { StoreInput } from './store.js';

export const RECORDING_FORMAT = 'raftctl-recording';
export const RECORDING_VERSION = 1;

export interface RecordedInput {
  /** ms since the recording started. */
  t: number;
  input: StoreInput;
}

export class Recorder {
  private readonly out: WriteStream;
  private readonly started: number;
  private buffer: string[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failed: Error | undefined;
  count = 0;

  constructor(
    readonly file: string,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
    this.out = createWriteStream(file, { flags: 'w' });
    this.out.on('error', (err) => {
      this.failed = err;
    });
    this.out.write(
      `${JSON.stringify({ format: RECORDING_FORMAT, version: RECORDING_VERSION, startedAt: this.started })}\n`,
    );
  }

  /** The error that stopped the recording, if any (the console reports it). */
  get error(): Error | undefined {
    return this.failed;
  }

  write(input: StoreInput): void {
    if (this.failed !== undefined) return;
    this.count++;
    this.buffer.push(JSON.stringify({ t: this.now() - this.started, input }));
    this.timer ??= setTimeout(() => this.flush(), 100);
  }

  private flush(): void {
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    this.out.write(`${this.buffer.join('\n')}\n`);
    this.buffer = [];
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.flush();
    await new Promise<void>((resolve) => this.out.end(() => resolve()));
  }
}

// Inputs are validated when read back: a recording is a file a person may have edited.
const InputSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), address: z.string(), hello: NodeHelloSchema }),
  z.object({ type: z.literal('state'), state: NodeStateSchema }),
  z.object({ type: z.literal('event'), event: NodeEventSchema }),
  z.object({
    type: z.literal('link'),
    node: z.int().positive(),
    status: z.enum(['connecting', 'up', 'down']),
    address: z.string().optional(),
    reason: z.string().optional(),
  }),
  z.object({ type: z.literal('lost'), node: z.int().positive(), count: z.int().positive() }),
  z.object({ type: z.literal('members'), members: z.array(MemberSchema) }),
  z.object({ type: z.literal('note'), level: z.enum(['info', 'warn', 'error']), text: z.string() }),
]);
const LineSchema = z.object({ t: z.number().nonnegative(), input: InputSchema });

export class RecordingError extends Error {
  override name = 'RecordingError';
}

/** Reads a recording; a bad line is an error naming the line, so a truncated file is obvious. */
export async function readRecording(file: string): Promise<{ startedAt: number; inputs: RecordedInput[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RecordingError(`cannot read recording ${file}: ${(err as Error).message}`);
  }
  const lines = text.split('\n');
  let startedAt = 0;
  const inputs: RecordedInput[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      // A recording cut off mid-line (the console was killed) still replays up to there.
      if (i >= lines.length - 2) break;
      throw new RecordingError(`${file}:${i + 1}: not JSON`);
    }
    if (i === 0 || (typeof json === 'object' && json !== null && 'format' in json)) {
      const h = json as { format?: unknown; version?: unknown; startedAt?: unknown };
      if (h.format !== RECORDING_FORMAT) throw new RecordingError(`${file} is not a raftctl recording`);
      if (h.version !== RECORDING_VERSION) {
        throw new RecordingError(
          `${file}: recording version ${String(h.version)}, this console reads ${RECORDING_VERSION}`,
        );
      }
      startedAt = typeof h.startedAt === 'number' ? h.startedAt : 0;
      continue;
    }
    const r = LineSchema.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new RecordingError(
        `${file}:${i + 1}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
      );
    }
    inputs.push(r.data as RecordedInput);
  }
  return { startedAt, inputs };
}
