/**
 * Certificates for the TLS handler: one per app host name (`<app>.<domain>`), signed by a local CA
 * the proxy creates on first use with the `openssl` CLI (self-signed: clients trust
 * `<certDir>/ca.crt`). A certificate placed as `<certDir>/<host>.crt` + `.key` is used as is.
 * @module
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class CertStore {
  private readonly contexts = new Map<string, Promise<SecureContext>>();
  private ca: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  get caFile(): string {
    return join(this.dir, 'ca.crt');
  }

  /** Creates the CA (once) so clients can be given `ca.crt` before the first handshake. */
  ensureCa(): Promise<void> {
    this.ca ??= (async () => {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      if (existsSync(join(this.dir, 'ca.key')) && existsSync(this.caFile)) return;
      await run('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(this.dir, 'ca.key'),
        '-out', this.caFile, '-days', '3650', '-subj', '/CN=Hangar proxy local CA', '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ]);
    })();
    return this.ca;
  }

  /** The TLS context for `host`, creating its certificate on first use. */
  context(host: string): Promise<SecureContext> {
    const name = host.toLowerCase();
    if (!/^[a-z0-9.-]{1,253}$/.test(name)) return Promise.reject(new Error(`bad server name ${JSON.stringify(host)}`));
    let p = this.contexts.get(name);
    if (!p) {
      p = this.issue(name);
      this.contexts.set(name, p);
      p.catch(() => this.contexts.delete(name));
    }
    return p;
  }

  private async issue(name: string): Promise<SecureContext> {
    const crt = join(this.dir, `${name}.crt`);
    const key = join(this.dir, `${name}.key`);
    if (!existsSync(crt) || !existsSync(key)) {
      await this.ensureCa();
      const csr = join(this.dir, `${name}.csr`);
      const ext = join(this.dir, `${name}.ext`);
      writeFileSync(ext, `subjectAltName=DNS:${name}\nextendedKeyUsage=serverAuth\n`);
      await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
      await run('openssl', ['x509', '-req', '-in', csr, '-CA', this.caFile, '-CAkey', join(this.dir, 'ca.key'), '-CAcreateserial', '-days', '825', '-out', crt, '-extfile', ext]);
    }
    return createSecureContext({ cert: readFileSync(crt), key: readFileSync(key) });
  }
}
