/**
 * The agents this API server forwards to, by host id, and whether each is reachable now.
 * @module
 */
import { HangarError } from '../core/errors.js';
import type { AgentLink } from './agent-link.js';

export class HostRegistry {
  private readonly links = new Map<string, AgentLink>();

  add(hostId: string, link: AgentLink): void {
    this.links.get(hostId)?.close();
    this.links.set(hostId, link);
  }

  link(hostId: string): AgentLink {
    const link = this.links.get(hostId);
    if (!link) throw new HangarError('unavailable', `host ${hostId} is not connected to this API server; start its agent and retry`);
    return link;
  }

  isReachable(hostId: string): boolean {
    return this.links.get(hostId)?.reachable ?? false;
  }

  entries(): [string, AgentLink][] {
    return [...this.links.entries()];
  }

  closeAll(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }
}
