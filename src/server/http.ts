// The node's plain HTTP endpoints: /health for load balancers, /metrics for Prometheus,
// and the part of etcd's v3 JSON gateway that the KV store supports (put, range,
// deleterange), so etcd's curl examples and simple gateway clients work against raftctl.
//
// Gateway shapes follow etcd (grpc-gateway with proto3 JSON): bytes are base64, int64s are
// decimal strings, and fields with default values are omitted (an empty range has no
// `kvs` and no `count`). Errors are {error, code, message} with a gRPC status code.
//
// Limitation: keys and values are UTF-8 text in raftctl; bytes that are not valid UTF-8
// are refused with 400 (so is a prefix range_end whose last byte was incremented past a
// valid UTF-8 sequence). Only single-key deletes are supported (no range_end).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../protocol/control.js';
import type { Logger } from '../raft/logger.js';
import type { KvEntry } from './kv.js';
import { type Metrics, PROMETHEUS_CONTENT_TYPE } from './metrics.js';

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface HealthReport {
  health: 'ok' | 'no_leader';
  id: number;
  role: 'leader' | 'follower' | 'candidate' | 'precandidate';
  term: number;
  leader: number;
  commit: number;
  applied: number;
}

/** What the gateway needs from the node. Errors thrown with a `code` (CommandError) map to gRPC codes. */
export interface HttpApi {
  /** Emitted verbatim as header.cluster_id. */
  readonly clusterId: string;
  /** Emitted as header.member_id (decimal string). */
  readonly memberId: number;
  readonly metrics: Metrics;
  health(): HealthReport;
  /** Proposes a put; resolves once applied. `prev` is returned when asked for and the key existed. */
  put(
    key: string,
    value: string,
    prevKv: boolean,
  ): Promise<{ revision: number; term: number; prev?: KvEntry }>;
  /**
   * Reads [key, rangeEnd) with etcd's conventions (see KvStore.range). `kvs` holds at most
   * `limit` entries (0 = no limit); `count` is the number of keys in the whole range.
   * `serializable` allows a local read without a ReadIndex round.
   */
  range(
    key: string,
    rangeEnd: string | undefined,
    opts: { limit: number; serializable: boolean },
  ): Promise<{ revision: number; term: number; kvs: KvEntry[]; count: number }>;
  /** Proposes a delete of one key; resolves once applied. `prev` as for put. */
  deleteRange(
    key: string,
    prevKv: boolean,
  ): Promise<{ revision: number; term: number; deleted: number; prev?: KvEntry }>;
}

export interface HttpHandlerOptions {
  maxBodyBytes?: number;
  logger?: Logger;
  /**
   * The cluster token. When set, the KV gateway (/v3/kv/*) requires it as
   * `Authorization: Bearer TOKEN` (or the bare token, as etcd's gateway takes it);
   * /health and /metrics stay open for load balancers and Prometheus.
   */
  token?: string;
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** gRPC status codes the gateway uses, and the HTTP status grpc-gateway maps each to. */
const GRPC = {
  InvalidArgument: { code: 3, http: 400 },
  DeadlineExceeded: { code: 4, http: 504 },
  NotFound: { code: 5, http: 404 },
  ResourceExhausted: { code: 8, http: 413 },
  Unimplemented: { code: 12, http: 501 },
  // Not a grpc-gateway mapping (it has no notion of methods per path): plain HTTP semantics.
  MethodNotAllowed: { code: 12, http: 405 },
  Internal: { code: 13, http: 500 },
  Unavailable: { code: 14, http: 503 },
  Unauthenticated: { code: 16, http: 401 },
} as const;
type Grpc = (typeof GRPC)[keyof typeof GRPC];

class GatewayError extends Error {
  constructor(
    readonly status: Grpc,
    message: string,
  ) {
    super(message);
  }
}

const invalid = (msg: string) => new GatewayError(GRPC.InvalidArgument, msg);

/** A body past the limit is still read (and dropped) up to this much more, so the client sees the 413. */
const DRAIN_BYTES = 16 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const BASE64 = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/;

export function createHttpHandler(api: HttpApi, opts: HttpHandlerOptions = {}): HttpHandler {
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = opts.logger;
  // Digests have equal lengths, so comparing them takes the same time whatever was sent.
  const tokenDigest = opts.token === undefined ? undefined : sha256(opts.token);

  const routes: Record<
    string,
    { method: 'GET' | 'POST'; run: (req: IncomingMessage, res: ServerResponse) => void }
  > = {
    '/health': { method: 'GET', run: (req, res) => health(req, res) },
    '/metrics': { method: 'GET', run: (req, res) => metrics(req, res) },
    '/v3/kv/put': { method: 'POST', run: (req, res) => gateway(req, res, put) },
    '/v3/kv/range': { method: 'POST', run: (req, res) => gateway(req, res, range) },
    '/v3/kv/deleterange': { method: 'POST', run: (req, res) => gateway(req, res, deleteRange) },
  };

  function health(req: IncomingMessage, res: ServerResponse): void {
    const h = api.health();
    send(res, req, h.health === 'ok' ? 200 : 503, 'application/json', JSON.stringify(h));
  }

  function metrics(req: IncomingMessage, res: ServerResponse): void {
    send(res, req, 200, PROMETHEUS_CONTENT_TYPE, api.metrics.render());
  }

  function header(revision: number, term: number) {
    return {
      cluster_id: api.clusterId,
      member_id: String(api.memberId),
      revision: String(revision),
      raft_term: String(term),
    };
  }

  async function put(body: Record<string, unknown>): Promise<unknown> {
    const key = requireKey(body);
    const value = body.value === undefined ? '' : bytesField(body, 'value');
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES)
      throw invalid(`value: values are at most ${MAX_VALUE_BYTES} bytes`);
    const prevKv = boolField(body, 'prev_kv');
    for (const f of ['ignore_value', 'ignore_lease'] as const) {
      if (boolField(body, f)) throw new GatewayError(GRPC.Unimplemented, `${f} is not supported`);
    }
    if (int64Field(body, 'lease') !== 0)
      throw new GatewayError(GRPC.Unimplemented, 'leases are not supported');
    const r = await api.put(key, value, prevKv);
    return {
      header: header(r.revision, r.term),
      ...(prevKv && r.prev ? { prev_kv: kvJson(r.prev, false) } : {}),
    };
  }

  async function range(body: Record<string, unknown>): Promise<unknown> {
    const key = requireKey(body);
    const rangeEnd = body.range_end === undefined ? undefined : bytesField(body, 'range_end');
    const limit = int64Field(body, 'limit');
    if (limit < 0) throw invalid('limit must not be negative');
    if (int64Field(body, 'revision') !== 0) {
      throw new GatewayError(
        GRPC.Unimplemented,
        'reads at a past revision are not supported (no MVCC history)',
      );
    }
    const serializable = boolField(body, 'serializable');
    const keysOnly = boolField(body, 'keys_only');
    const countOnly = boolField(body, 'count_only');
    const r = await api.range(key, rangeEnd === '' ? undefined : rangeEnd, { limit, serializable });
    const kvs = countOnly ? [] : r.kvs.map((e) => kvJson(e, keysOnly));
    return {
      header: header(r.revision, r.term),
      ...(kvs.length > 0 ? { kvs } : {}),
      ...(r.count > r.kvs.length && !countOnly ? { more: true } : {}),
      ...(r.count > 0 ? { count: String(r.count) } : {}),
    };
  }

  async function deleteRange(body: Record<string, unknown>): Promise<unknown> {
    const key = requireKey(body);
    if (body.range_end !== undefined && bytesField(body, 'range_end') !== '') {
      throw new GatewayError(GRPC.Unimplemented, 'range deletes are not supported: delete one key at a time');
    }
    const prevKv = boolField(body, 'prev_kv');
    const r = await api.deleteRange(key, prevKv);
    return {
      header: header(r.revision, r.term),
      ...(r.deleted > 0 ? { deleted: String(r.deleted) } : {}),
      ...(prevKv && r.prev ? { prev_kvs: [kvJson(r.prev, false)] } : {}),
    };
  }

  function gateway(
    req: IncomingMessage,
    res: ServerResponse,
    op: (body: Record<string, unknown>) => Promise<unknown>,
  ): void {
    if (tokenDigest !== undefined && !authorized(req, tokenDigest)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="raftctl"');
      fail(
        res,
        req,
        new GatewayError(
          GRPC.Unauthenticated,
          'this node requires the cluster token: send it as `Authorization: Bearer TOKEN`',
        ),
      );
      // The body is not wanted; drop it (bounded) so the client can read the answer.
      discard(req, 0);
      return;
    }
    readBody(req, res, maxBody, (text) => {
      let body: unknown;
      try {
        body = text.trim() === '' ? {} : JSON.parse(text);
      } catch (err) {
        fail(res, req, invalid(`invalid JSON body: ${(err as Error).message}`));
        return;
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        fail(res, req, invalid('the body must be a JSON object'));
        return;
      }
      let pending: Promise<unknown>;
      try {
        pending = op(body as Record<string, unknown>);
      } catch (err) {
        fail(res, req, toGatewayError(err));
        return;
      }
      pending.then(
        (out) => send(res, req, 200, 'application/json', JSON.stringify(out)),
        (err: unknown) => {
          const ge = toGatewayError(err);
          if (ge.status === GRPC.Internal)
            log?.error(`http ${req.url}: ${(err as Error)?.stack ?? String(err)}`);
          fail(res, req, ge);
        },
      );
    });
  }

  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes[path];
    try {
      if (!route) {
        fail(res, req, new GatewayError(GRPC.NotFound, `no such endpoint: ${path}`));
        return;
      }
      const method = req.method ?? 'GET';
      const allowed = route.method === 'GET' ? ['GET', 'HEAD'] : ['POST'];
      if (!allowed.includes(method)) {
        res.setHeader('Allow', allowed.join(', '));
        fail(
          res,
          req,
          new GatewayError(GRPC.MethodNotAllowed, `${method} is not allowed on ${path}; use ${route.method}`),
        );
        return;
      }
      route.run(req, res);
    } catch (err) {
      log?.error(`http ${path}: ${(err as Error)?.stack ?? String(err)}`);
      fail(
        res,
        req,
        new GatewayError(GRPC.Internal, `internal error: ${(err as Error)?.message ?? String(err)}`),
      );
    }
  };
}

// ---- Request decoding ---------------------------------------------------------------------

function requireKey(body: Record<string, unknown>): string {
  if (body.key === undefined) throw invalid('etcdserver: key is not provided');
  const key = bytesField(body, 'key');
  if (key === '') throw invalid('etcdserver: key is not provided');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw invalid(`key: keys are at most ${MAX_KEY_BYTES} bytes`);
  return key;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Whether the request carries the token, as `Bearer TOKEN` or bare (etcd's gateway style). */
function authorized(req: IncomingMessage, digest: Buffer): boolean {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return false;
  const m = /^Bearer\s+(.*)$/i.exec(h);
  return timingSafeEqual(sha256(m ? m[1]! : h), digest);
}

/** A proto3 `bytes` field: base64 (standard or URL-safe, padding optional), here required to be UTF-8. */
function bytesField(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (v === null || v === undefined) return '';
  if (typeof v !== 'string') throw invalid(`${field}: expected a base64 string`);
  if (!BASE64.test(v) || v.replace(/=+$/, '').length % 4 === 1 || (v.includes('=') && v.length % 4 !== 0)) {
    throw invalid(`${field}: invalid base64`);
  }
  const bytes = Buffer.from(v, v.includes('-') || v.includes('_') ? 'base64url' : 'base64');
  try {
    return utf8.decode(bytes);
  } catch {
    throw invalid(`${field}: not valid UTF-8 (raftctl stores keys and values as UTF-8 text)`);
  }
}

/** proto3 JSON accepts an int64 as a number or a decimal string. */
function int64Field(body: Record<string, unknown>, field: string): number {
  const v = body[field];
  if (v === null || v === undefined) return 0;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw invalid(`${field}: expected an integer`);
  return n;
}

function boolField(body: Record<string, unknown>, field: string): boolean {
  const v = body[field];
  if (v === null || v === undefined) return false;
  if (typeof v !== 'boolean') throw invalid(`${field}: expected true or false`);
  return v;
}

function kvJson(e: KvEntry, keysOnly: boolean) {
  const out: Record<string, string> = {
    key: Buffer.from(e.key, 'utf8').toString('base64'),
    create_revision: String(e.createRevision),
    mod_revision: String(e.modRevision),
    version: String(e.version),
  };
  // proto3 JSON omits empty bytes, as etcd does for an empty value.
  if (!keysOnly && e.value !== '') out.value = Buffer.from(e.value, 'utf8').toString('base64');
  return out;
}

/** Maps the node's errors (CommandError codes) to gRPC statuses; anything else is internal. */
function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'bad_args':
      return new GatewayError(GRPC.InvalidArgument, message);
    case 'timeout':
      return new GatewayError(GRPC.DeadlineExceeded, `etcdserver: request timed out: ${message}`);
    case 'not_leader':
    case 'no_leader':
    case 'proposal_dropped':
    case 'unavailable':
      return new GatewayError(GRPC.Unavailable, message);
    default:
      return new GatewayError(GRPC.Internal, message);
  }
}

// ---- Responses -----------------------------------------------------------------------------

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': buf.length });
  res.end(req.method === 'HEAD' ? undefined : buf);
}

function fail(res: ServerResponse, req: IncomingMessage, err: GatewayError): void {
  send(
    res,
    req,
    err.status.http,
    'application/json',
    JSON.stringify({ error: err.message, code: err.status.code, message: err.message }),
  );
}

/**
 * Reads the body as UTF-8 text up to `limit` bytes. Past it, answers 413 and keeps reading
 * (and dropping) a bounded amount so the client, still sending, can read the answer instead
 * of a reset connection; beyond that the socket is closed.
 */
function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  done: (text: string) => void,
): void {
  const tooLarge = () =>
    fail(
      res,
      req,
      new GatewayError(GRPC.ResourceExhausted, `request body exceeds the limit of ${limit} bytes`),
    );
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    if (declared > limit + DRAIN_BYTES) res.setHeader('Connection', 'close');
    tooLarge();
    discard(req, limit);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  req.on('data', (chunk: Buffer) => {
    if (over) return;
    size += chunk.length;
    if (size > limit) {
      over = true;
      chunks.length = 0;
      tooLarge();
      discard(req, limit, size);
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (over) return;
    let text: string;
    try {
      text = utf8.decode(Buffer.concat(chunks));
    } catch {
      fail(res, req, invalid('the body is not valid UTF-8'));
      return;
    }
    done(text);
  });
  req.on('error', () => {
    // The client went away mid-body: nothing to answer.
  });
}

function discard(req: IncomingMessage, limit: number, already = 0): void {
  let dropped = already;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > limit + DRAIN_BYTES) req.socket.destroy();
  });
  req.resume();
}
