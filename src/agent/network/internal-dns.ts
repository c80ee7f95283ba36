/**
 * The `.internal` resolver machines use (Fly's private DNS, scoped to the querying machine's
 * organization). A registry of attached machines, a pure `resolve()` and a UDP+TCP server bound to
 * the bridge gateway addresses on port 53. Names answer only for machines that are started (the
 * `isServing` filter the driver installs): a stopped or suspended machine keeps its record and
 * address but drops out of every answer until it starts again, as on Fly.
 *
 * Names (case-insensitive; answers only from the querier's org, so another org's names are NXDOMAIN):
 * - `<app>.internal`, `global.<app>.internal`: AAAA (A for the IPv4 service address) of every machine
 * - `<machine id>.vm.<app>.internal`: that machine
 * - `<region>.<app>.internal`: the app's machines in the region
 * - `<group>.process.<app>.internal`: the app's machines in a process group
 * - TXT `_apps.internal` (app names, comma-separated), `vms.<app>.internal` (`<id> <region>,...`),
 *   `regions.<app>.internal` (regions, comma-separated), `_instances.internal`
 *   (`instance=<id>,app=<app>,ip=<ipv6>,region=<region>;...`)
 * A known name asked for another type answers NOERROR with no records; anything else NXDOMAIN.
 * Queries from an address that is no machine's are REFUSED.
 * @module
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { HangarError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { type DnsAnswer, type DnsQuery, DnsFormatError, RCODE, TYPE, decodeQuery, encodeResponse } from './dns-wire.js';

export interface DnsRecord {
  machineId: string;
  appName: string;
  orgId: number;
  region: string;
  ipv6: string;
  ipv4?: string;
  processGroup?: string;
}

export interface Resolution {
  rcode: number;
  answers: DnsAnswer[];
}

export const DNS_TTL = 5;

export class InternalDns {
  private readonly records = new Map<string, DnsRecord>();
  private readonly sockets: Socket[] = [];
  private readonly tcpServers: Server[] = [];
  private readonly connections = new Set<import('node:net').Socket>();
  private isServing: (machineId: string) => boolean = () => true;

  /** `orgOf` maps a source address to the org of the machine that owns it (attached machines). */
  constructor(private readonly options: { logger: Logger; orgOf?: (address: string) => number | undefined }) {}

  register(record: DnsRecord): void {
    this.records.set(record.machineId, { ...record, appName: record.appName.toLowerCase(), region: record.region.toLowerCase() });
  }

  /** Which registered machines answer: the driver's view of which are started right now. */
  setServingFilter(isServing: (machineId: string) => boolean): void {
    this.isServing = isServing;
  }

  unregister(machineId: string): void {
    this.records.delete(machineId);
  }

  list(): DnsRecord[] {
    return [...this.records.values()];
  }

  /** The org a query from `address` belongs to: an attached machine's or a registered record's. */
  orgOfSource(address: string): number | undefined {
    const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
    const attached = this.options.orgOf?.(plain);
    if (attached !== undefined) return attached;
    for (const r of this.records.values()) if (r.ipv6 === plain || r.ipv4 === plain) return r.orgId;
    return undefined;
  }

  resolve(orgId: number, name: string, type: number): Resolution {
    const lower = name.toLowerCase().replace(/\.$/, '');
    if (!lower.endsWith('.internal')) return { rcode: RCODE.NXDOMAIN, answers: [] };
    const labels = lower.slice(0, -'.internal'.length).split('.');
    const org = [...this.records.values()].filter((r) => r.orgId === orgId && this.isServing(r.machineId)).sort((a, b) => a.machineId.localeCompare(b.machineId));
    const txt = (text: string): Resolution => ({ rcode: RCODE.NOERROR, answers: type === TYPE.TXT || type === TYPE.ANY ? [{ type: TYPE.TXT, ttl: DNS_TTL, text }] : [] });
    const uniq = (values: string[]) => [...new Set(values)].sort();

    if (labels.length === 1 && labels[0] === '_apps') {
      const apps = uniq(org.map((r) => r.appName));
      return apps.length ? txt(apps.join(',')) : { rcode: RCODE.NXDOMAIN, answers: [] };
    }
    if (labels.length === 1 && labels[0] === '_instances') {
      if (!org.length) return { rcode: RCODE.NXDOMAIN, answers: [] };
      return txt(org.map((r) => `instance=${r.machineId},app=${r.appName},ip=${r.ipv6},region=${r.region}`).join(';'));
    }
    const app = labels.at(-1)!;
    const ofApp = org.filter((r) => r.appName === app);
    if (!ofApp.length) return { rcode: RCODE.NXDOMAIN, answers: [] };
    const rest = labels.slice(0, -1);
    let selected: DnsRecord[] | undefined;
    if (rest.length === 0 || (rest.length === 1 && rest[0] === 'global')) selected = ofApp;
    else if (rest.length === 1 && rest[0] === 'vms') return txt(ofApp.map((r) => `${r.machineId} ${r.region}`).join(','));
    else if (rest.length === 1 && rest[0] === 'regions') return txt(uniq(ofApp.map((r) => r.region)).join(','));
    else if (rest.length === 2 && rest[1] === 'vm') selected = ofApp.filter((r) => r.machineId === rest[0]);
    else if (rest.length === 2 && rest[1] === 'process') selected = ofApp.filter((r) => (r.processGroup ?? 'app').toLowerCase() === rest[0]);
    else if (rest.length === 1) selected = ofApp.filter((r) => r.region === rest[0]);
    if (!selected?.length) return { rcode: RCODE.NXDOMAIN, answers: [] };
    const answers: DnsAnswer[] = [];
    if (type === TYPE.AAAA || type === TYPE.ANY) for (const r of selected) answers.push({ type: TYPE.AAAA, ttl: DNS_TTL, address: r.ipv6 });
    if (type === TYPE.A || type === TYPE.ANY) for (const r of selected) if (r.ipv4) answers.push({ type: TYPE.A, ttl: DNS_TTL, address: r.ipv4 });
    return { rcode: RCODE.NOERROR, answers };
  }

  /** Answers one wire query from `source`; undefined when the message is not worth an answer. */
  answer(msg: Buffer, source: string, transport: 'udp' | 'tcp'): Buffer | undefined {
    let query: DnsQuery;
    try {
      query = decodeQuery(msg);
    } catch (err) {
      if (err instanceof DnsFormatError && msg.length >= 12 && !(msg[2]! & 0x80)) {
        const header = Buffer.from(msg.subarray(0, 12));
        header.writeUInt16BE(0x8000 | RCODE.FORMERR, 2);
        header.fill(0, 4);
        return header;
      }
      return undefined;
    }
    const maxSize = transport === 'tcp' ? 65535 : Math.min(query.ednsUdpSize ?? 512, 1232);
    if (query.opcode !== 0) return encodeResponse(query, { rcode: RCODE.NOTIMP, answers: [], maxSize });
    const orgId = this.orgOfSource(source);
    if (orgId === undefined || query.question.class !== 1) return encodeResponse(query, { rcode: RCODE.REFUSED, answers: [], maxSize, authoritative: false });
    const { rcode, answers } = this.resolve(orgId, query.question.name, query.question.type);
    return encodeResponse(query, { rcode, answers, maxSize });
  }

  /** Binds UDP and TCP port `port` on each address. */
  async listen(addresses: string[], port = 53): Promise<void> {
    for (const address of addresses) {
      const family = address.includes(':') ? 'udp6' : 'udp4';
      const socket = createSocket({ type: family, reuseAddr: false });
      socket.on('message', (msg, rinfo) => {
        const reply = this.answer(msg, rinfo.address, 'udp');
        if (reply) socket.send(reply, rinfo.port, rinfo.address);
      });
      socket.on('error', (err) => this.options.logger.warn('dns socket error', { address, error: err.message }));
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => reject(bindError(address, port, 'UDP', err));
        socket.once('error', onError);
        socket.bind(port, address, () => {
          socket.off('error', onError);
          resolve();
        });
      });
      this.sockets.push(socket);

      const server = createServer((conn) => {
        this.connections.add(conn);
        conn.on('close', () => this.connections.delete(conn));
        conn.setTimeout(5_000, () => conn.destroy());
        let buffered = Buffer.alloc(0);
        conn.on('data', (chunk: Buffer) => {
          buffered = Buffer.concat([buffered, chunk]);
          while (buffered.length >= 2) {
            const len = buffered.readUInt16BE(0);
            if (buffered.length < 2 + len) break;
            const reply = this.answer(buffered.subarray(2, 2 + len), conn.remoteAddress ?? '', 'tcp');
            buffered = buffered.subarray(2 + len);
            if (!reply) return void conn.destroy();
            const prefix = Buffer.alloc(2);
            prefix.writeUInt16BE(reply.length);
            conn.write(Buffer.concat([prefix, reply]));
          }
          if (buffered.length > 65537) conn.destroy();
        });
        conn.on('error', () => undefined);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(bindError(address, port, 'TCP', err)));
        server.listen({ port, host: address }, () => resolve());
      });
      this.tcpServers.push(server);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets.splice(0)) await new Promise<void>((resolve) => socket.close(() => resolve()));
    for (const conn of this.connections) conn.destroy();
    for (const server of this.tcpServers.splice(0)) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function bindError(address: string, port: number, proto: string, err: Error): HangarError {
  return new HangarError('unavailable', `network: the .internal DNS server cannot listen on ${proto} [${address}]:${port}: ${err.message}; another resolver may own the port, or the bridge address is missing (run setup again)`, { cause: err });
}
