/**
 * Test fixtures for the agent's own tests: temp data dirs, specs, an agent on port 0, and small
 * waiting helpers. Test-only; nothing outside tests imports it.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentEvent, AgentMachineSpec } from '../../api-types/agent.js';
import type { MachineConfig } from '../../api-types/machine.js';
import { newMachineId, newUlid } from '../../core/ids.js';
import { silentLogger } from '../../core/logger.js';
import { type Agent, type AgentOptions, createAgent } from '../create-agent.js';
import type { Driver } from '../drivers/driver.js';
import { FakeDriver } from '../drivers/fake/fake-driver.js';

export const TEST_TOKEN = 'test-agent-token';

export function tempDir(prefix = 'hangar-agent-test-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A spec with fake-driver script keys in `meta`. */
export function spec(options: { id?: string; meta?: Record<string, string>; config?: Partial<MachineConfig>; version?: string } = {}): AgentMachineSpec {
  const id = options.id ?? newMachineId();
  return {
    id,
    name: `m-${id}`,
    app_name: 'testapp',
    org_slug: 'personal',
    org_id: 7,
    region: 'lcl',
    version: options.version ?? newUlid(),
    config: { image: 'example/app:latest', ...options.config, metadata: { ...options.config?.metadata, ...options.meta } },
  };
}

export interface TestAgent {
  agent: Agent;
  url: string;
  driver: Driver;
  dataDir: string;
  /** fetch against the agent with the token. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startTestAgent(options: { dataDir: string; driver?: Driver; closeDriver?: boolean } & Partial<AgentOptions>): Promise<TestAgent> {
  const driver = options.driver ?? new FakeDriver();
  const agent = createAgent({
    region: 'lcl',
    token: TEST_TOKEN,
    logger: silentLogger,
    listen: { host: '127.0.0.1', port: 0 },
    restartBackoff: { initialMs: 20, maxMs: 80 },
    heartbeatMs: 15_000,
    ...options,
    driver,
  });
  const { url } = await agent.start();
  return {
    agent,
    url,
    driver,
    dataDir: options.dataDir,
    async call(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    close: () => agent.close(),
  };
}

/** Compact "type:status" list of the user-visible events in a change list. */
export function eventKinds(events: AgentEvent[]): string[] {
  return events.filter((e) => e.event).map((e) => `${e.event!.type}:${e.event!.status}`);
}
