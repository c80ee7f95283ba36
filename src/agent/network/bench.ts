/**
 * Attach/detach latency on real namespaces (root): `node dist/src/agent/network/bench.js [n]`.
 * Uses its own bridge, /24, 6PN net and netns prefix, and removes everything at the end.
 * @module
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../core/logger.js';
import { HostNetwork } from './host-network.js';

const n = Math.min(Number(process.argv[2] ?? 30), 200);
const rand = randomBytes(2).toString('hex');
const stateDir = mkdtempSync(join(tmpdir(), 'hangar-net-bench-'));
const net = new HostNetwork({ logger: silentLogger, stateDir, bridge: `hgb${rand}`, ipv4Cidr: `172.31.${randomInt(16, 250)}.0/24`, ipv6Net: 0x1000 + randomInt(0xe000), netnsPrefix: `hb${rand}-` });

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1);
  return `median ${at(0.5)} ms, min ${s[0]!.toFixed(1)}, p90 ${at(0.9)}, max ${s.at(-1)!.toFixed(1)} (n=${s.length})`;
};

try {
  let t = performance.now();
  await net.setup();
  console.log(`setup (fresh): ${(performance.now() - t).toFixed(1)} ms`);
  const attach: number[] = [];
  const reattach: number[] = [];
  const detach: number[] = [];
  const ids = Array.from({ length: n }, () => randomBytes(7).toString('hex'));
  for (const [i, machineId] of ids.entries()) {
    const m = { machineId, orgId: 1 + (i % 3), appName: 'bench' };
    t = performance.now();
    await net.attach(m);
    attach.push(performance.now() - t);
    t = performance.now();
    await net.attach(m);
    reattach.push(performance.now() - t);
  }
  for (const machineId of ids) {
    t = performance.now();
    await net.detach(machineId);
    detach.push(performance.now() - t);
  }
  console.log(`attach (new machine):       ${stats(attach)}`);
  console.log(`attach (already attached):  ${stats(reattach)}`);
  console.log(`detach:                     ${stats(detach)}`);
  for (const machineId of ids) await net.release(machineId);
} finally {
  await net.destroyHostLevel();
  rmSync(stateDir, { recursive: true, force: true });
}
