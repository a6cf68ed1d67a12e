import { describe, expect, it } from 'vitest';
import { ControlError } from '../../src/client/client.js';
import { shortReason, tlsHint } from '../../src/client/connect-errors.js';

describe('TLS failures', () => {
  // The messages ws and OpenSSL give (seen against real nodes), as ControlClient wraps them.
  const failed = (m: string) => new ControlError('unavailable', m);
  const hangUp = failed('ws://127.0.0.1:7001/control: socket hang up');
  const wrongVersion = failed(
    'wss://127.0.0.1:7001/control: write EPROTO 806CC352F27F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n',
  );
  const certRequired = failed(
    'wss://127.0.0.1:7001/control: 803CE80E787F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n',
  );
  const untrusted = failed('wss://127.0.0.1:7001/control: unable to verify the first certificate');

  it('says which flag to add, change or drop', () => {
    expect(tlsHint(hangUp, false)).toMatch(/pass --tls-ca FILE/);
    expect(tlsHint(wrongVersion, true)).toMatch(/does not seem to serve TLS: leave out --tls-ca/);
    expect(tlsHint(certRequired, true)).toMatch(/pass --tls-cert FILE --tls-key FILE/);
    expect(tlsHint(untrusted, true)).toMatch(/not trusted: pass --tls-ca FILE/);
    expect(tlsHint(failed('wss://h:1/control: socket hang up'), true)).toMatch(/--tls-cert must be signed/);
    // Not a TLS problem: no hint, so the caller's usual advice stands.
    expect(tlsHint(failed('ws://h:1/control: connect ECONNREFUSED 127.0.0.1:1'), false)).toBeUndefined();
    expect(tlsHint(failed('no hello from ws://h:1/control within 2000 ms'), true)).toBeUndefined();
  });

  it("keeps OpenSSL's reason and drops its codes and source paths", () => {
    expect(shortReason(wrongVersion)).toBe('TLS handshake failed (wrong version number)');
    expect(shortReason(certRequired)).toBe('TLS handshake failed (tlsv13 alert certificate required)');
  });
});
