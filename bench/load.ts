// The put load generator shared by the failover and peers benchmarks: closed-loop
// clients (each waits for its answer before its next put) posting etcd v3 JSON gateway
// puts (`POST /v3/kv/put`, base64 key and value) over node:http with a keep-alive agent.
// The same code drives raftctl's gateway and etcd's, so the two are measured alike.
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

/** Keys each client cycles through, so the store stays small over long runs. */
export const KEYS_PER_CLIENT = 64;

export interface Latency {
  p50: number;
  p99: number;
  max: number;
}

export function latency(ms: number[]): Latency {
  const s = Float64Array.from(ms).sort();
  const at = (p: number) =>
    s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { p50: at(0.5), p99: at(0.99), max: s.length === 0 ? Number.NaN : s[s.length - 1]! };
}

export const fmtMs = (ms: number): string =>
  Number.isNaN(ms) ? '—' : ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A keep-alive agent with one socket per client, as the issue asks for both gateways. */
export function keepAliveAgent(concurrency: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
}

export interface PutReply {
  status: number;
  /** header.raft_term of a 200 answer. */
  term?: number;
  error?: string;
}

/** One POST /v3/kv/put; never rejects (network errors come back as status 0). */
export function gatewayPut(
  agent: Agent,
  base: { host: string; port: number },
  body: string,
  timeoutMs = 10_000,
): Promise<PutReply> {
  return new Promise((resolve) => {
    const req = request(
      {
        agent,
        host: base.host,
        port: base.port,
        method: 'POST',
        path: '/v3/kv/put',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            resolve({ status, error: text.slice(0, 200) });
            return;
          }
          let term: number | undefined;
          try {
            const t = (JSON.parse(text) as { header?: { raft_term?: string } }).header?.raft_term;
            if (t !== undefined) term = Number(t);
          } catch {
            // A 200 with a body we cannot read still acknowledged the write.
          }
          resolve({ status, term });
        });
        res.on('error', (err) => resolve({ status: 0, error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, error: err.message }));
    req.end(body);
  });
}

/** The JSON body of a put of `key` with a value of `valueBytes` bytes; values are precomputed. */
export function putBodies(clientId: number, valueBytes: number, prefix: string): string[] {
  const value = Buffer.alloc(valueBytes, 0x76).toString('base64');
  return Array.from({ length: KEYS_PER_CLIENT }, (_, k) => {
    const key = Buffer.from(`${prefix}/c${clientId}/k${k}`).toString('base64');
    return `{"key":"${key}","value":"${value}"}`;
  });
}

export interface Endpoint {
  host: string;
  port: number;
}

export interface LoadOptions {
  endpoints: Endpoint[];
  clients: number;
  valueBytes: number;
  prefix: string;
  agent: Agent;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Pause after a failed put before the next (ms). */
  errorBackoffMs?: number;
  /** Called for every answered put, with when it was sent and when it came back (performance.now()). */
  onReply?: (client: number, sentAt: number, at: number, r: PutReply) => void;
}

export interface LoadStats {
  ok: number;
  errors: number;
  secs: number;
  opsPerSec: number;
  latency: Latency;
  /** A few distinct error texts, for the report. */
  errorSamples: string[];
}

/**
 * Closed-loop put load. Client i starts on endpoint i mod n; after a failed put it moves
 * to the next endpoint (a dead or leaderless node does not hold it). Runs until stop()
 * and then reports on the whole run (or on the part after `mark()` was last called).
 */
export class PutLoad {
  private running = true;
  private readonly workers: Promise<void>[] = [];
  private lat: number[] = [];
  private ok = 0;
  private errors = 0;
  private t0 = performance.now();
  private readonly errorSamples = new Set<string>();

  constructor(private readonly o: LoadOptions) {
    for (let c = 0; c < o.clients; c++) this.workers.push(this.client(c));
  }

  /** Restarts the counters (e.g. after a warm-up). */
  mark(): void {
    this.lat = [];
    this.ok = 0;
    this.errors = 0;
    this.t0 = performance.now();
  }

  stats(): LoadStats {
    const secs = (performance.now() - this.t0) / 1000;
    return {
      ok: this.ok,
      errors: this.errors,
      secs,
      opsPerSec: this.ok / secs,
      latency: latency(this.lat),
      errorSamples: [...this.errorSamples],
    };
  }

  async stop(): Promise<LoadStats> {
    const s = this.stats();
    this.running = false;
    await Promise.all(this.workers);
    return s;
  }

  private async client(c: number): Promise<void> {
    const { endpoints, agent } = this.o;
    const bodies = putBodies(c, this.o.valueBytes, this.o.prefix);
    let ep = c % endpoints.length;
    let k = 0;
    while (this.running) {
      const sentAt = performance.now();
      const r = await gatewayPut(agent, endpoints[ep]!, bodies[k++ % bodies.length]!, this.o.timeoutMs);
      const at = performance.now();
      this.o.onReply?.(c, sentAt, at, r);
      if (r.status === 200) {
        this.ok++;
        this.lat.push(at - sentAt);
      } else {
        this.errors++;
        if (this.errorSamples.size < 5) this.errorSamples.add(`${r.status} ${r.error ?? ''}`.trim());
        ep = (ep + 1) % endpoints.length;
        if (this.running) await sleep(this.o.errorBackoffMs ?? 10);
      }
    }
  }
}
