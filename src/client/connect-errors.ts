// What a failed connection to a node means, in words a person can act on: the reason without
// OpenSSL's codes and source paths, and for the ways TLS mistakes fail, which flag to add,
// change or drop. Used by the scripting commands and by the console, so both say the same.
import { ControlError } from './client.js';

export function shortReason(err: unknown): string {
  if (err instanceof ControlError) {
    // ws reports refused connections as "ws://…: connect ECONNREFUSED 127.0.0.1:7001".
    const m = /(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENOTFOUND|ETIMEDOUT)/.exec(err.message);
    if (m) return m[1] === 'ECONNREFUSED' ? 'connection refused' : m[1]!;
    // OpenSSL's errors carry a code, a function and a source path around the reason:
    // "…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/…".
    const ssl = /SSL routines:[^:]*:([^:]+):/.exec(err.message);
    if (ssl) return `TLS handshake failed (${ssl[1]})`;
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * What to do about a connection that failed the way TLS mistakes fail, or undefined when it
 * did not: a TLS node hangs up on a plain connection; a plain node answers a TLS hello with
 * something that is not TLS; an untrusted or missing certificate fails the handshake.
 */
export function tlsHint(err: unknown, usingTls: boolean): string | undefined {
  const msg = err instanceof Error ? err.message : String(err);
  if (!usingTls) {
    return /socket hang up|ECONNRESET/.test(msg)
      ? 'If the nodes serve TLS (started with --tls-cert), pass --tls-ca FILE with the CA that signed their certificates (and --tls-cert FILE --tls-key FILE if they require client certificates)'
      : undefined;
  }
  if (/wrong version number|packet length too long/.test(msg))
    return 'The node does not seem to serve TLS: leave out --tls-ca, --tls-cert and --tls-key';
  if (/certificate required/.test(msg))
    return 'The node requires a client certificate: pass --tls-cert FILE --tls-key FILE, signed by the CA the node was started with (--tls-ca)';
  // Under TLS 1.3 a node checks the client's certificate after the client's side of the
  // handshake is done, so a refused one shows as the node hanging up.
  if (/unknown ca|bad certificate|certificate unknown|socket hang up|ECONNRESET/.test(msg))
    return 'The node refused the connection during the TLS handshake: if it requires client certificates, --tls-cert must be signed by the CA it was started with (--tls-ca)';
  if (
    /unable to verify|self[- ]signed|certificate has expired|not yet valid|altnames|unable to get/i.test(msg)
  )
    return "The node's certificate is not trusted: pass --tls-ca FILE with the CA that signed it (its SAN must name the address dialled)";
  return undefined;
}
