// Test certificates, made at test time with the `openssl` binary: a CA and node/client
// certificates it signs (SAN IP:127.0.0.1 plus any addresses asked for). Nothing here is a
// secret: the keys live in a temp dir for the length of one test file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Why TLS tests cannot run here, or undefined when `openssl` works. */
export function opensslMissing(): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return `openssl is not available (${(err as Error).message}); TLS tests skipped`;
  }
}

export interface CertFiles {
  cert: string;
  key: string;
}

export class TestPki {
  readonly dir: string;
  readonly ca: string;
  private readonly caKey: string;
  private serial = 1;

  private constructor(dir: string, name: string) {
    this.dir = dir;
    this.ca = path.join(dir, `${name}.pem`);
    this.caKey = path.join(dir, `${name}-key.pem`);
  }

  /** A new self-signed CA in its own temp dir. */
  static create(name = 'ca'): TestPki {
    const pki = new TestPki(mkdtempSync(path.join(os.tmpdir(), 'raftctl-pki-')), name);
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      pki.caKey,
      '-out',
      pki.ca,
      '-days',
      '2',
      '-subj',
      `/CN=raftctl test ${name}`,
    ]);
    return pki;
  }

  /** A certificate signed by this CA, usable as server and client, valid for `ips`. */
  issue(name: string, ips: string[] = ['127.0.0.1']): CertFiles {
    const key = path.join(this.dir, `${name}-key.pem`);
    const csr = path.join(this.dir, `${name}.csr`);
    const cert = path.join(this.dir, `${name}.pem`);
    const ext = path.join(this.dir, `${name}.ext`);
    writeFileSync(
      ext,
      [
        `subjectAltName=${[...ips.map((ip) => `IP:${ip}`), 'DNS:localhost'].join(',')}`,
        'extendedKeyUsage=serverAuth,clientAuth',
        'basicConstraints=CA:FALSE',
        'keyUsage=digitalSignature,keyEncipherment',
        '',
      ].join('\n'),
    );
    openssl([
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      `/CN=${name}`,
    ]);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      this.ca,
      '-CAkey',
      this.caKey,
      '-set_serial',
      String(this.serial++),
      '-out',
      cert,
      '-days',
      '2',
      '-extfile',
      ext,
    ]);
    return { cert, key };
  }

  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
