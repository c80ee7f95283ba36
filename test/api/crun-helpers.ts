/**
 * Helpers shared by the API tests on real crun containers: HTTP to a machine's private address,
 * polling, and "is the host clean of this machine" checks.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { mountsUnder } from '../../src/agent/images/overlay.js';
import type { CrunDriver } from '../../src/agent/drivers/crun/crun-driver.js';
import type { CrunCluster } from '../../src/testkit/crun-cluster.js';
import { rejectsWith } from '../../src/testkit/assertions.js';
import { until } from '../../src/testkit/waiting.js';

export function httpGet(host: string, port = 8080, timeoutMs = 1000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Retries until the machine's server answers (it may still be binding its port). */
export async function waitHttp(host: string, ms = 5000, port = 8080): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await httpGet(host, port, 500);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** What a machine may leave on the host; all must be gone after destroy. */
export async function leftovers(c: CrunCluster, id: string): Promise<string[]> {
  const agent = c.cluster.agents[0]!;
  const found: string[] = [];
  const dir = join(agent.dataDir, 'machines', id);
  const mounts = await mountsUnder(dir);
  if (mounts.length) found.push(`mounts ${mounts.join(', ')}`);
  if (existsSync(dir)) found.push(`dir ${dir}`);
  const containers = await (agent.driver as CrunDriver).runtime.list();
  if (containers.some((x) => x.id === id)) found.push('crun container');
  if (existsSync(`/var/run/netns/${c.network.netnsPrefix}${id}`)) found.push('netns');
  for (const cg of [`/sys/fs/cgroup/memory/hangar/${id}`, `/sys/fs/cgroup/pids/hangar/${id}`, `/sys/fs/cgroup/hangar/${id}`]) {
    if (existsSync(cg)) found.push(`cgroup ${cg}`);
  }
  return found;
}

/** Mounts and containers the agent has at all (for "nothing was left" after a refused create). */
export async function agentFootprint(c: CrunCluster): Promise<{ mounts: string[]; containers: string[] }> {
  const agent = c.cluster.agents[0]!;
  return {
    mounts: await mountsUnder(join(agent.dataDir, 'machines')),
    containers: (await (agent.driver as CrunDriver).runtime.list()).map((x) => x.id),
  };
}

export { rejectsWith, until };
