/**
 * In-process fan-out of agent events to live subscribers (the NDJSON stream). The database is the
 * durable copy; the hub only carries what happens while a subscriber is connected. Publishing is
 * synchronous and happens right after the change commits, so a subscriber that reads the database
 * and subscribes in the same tick sees every change exactly once.
 * @module
 */
import type { AgentEvent } from '../../api-types/agent.js';

export class EventHub {
  private readonly subscribers = new Set<(event: AgentEvent) => void>();

  subscribe(listener: (event: AgentEvent) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  publish(event: AgentEvent): void {
    for (const listener of this.subscribers) listener(event);
  }

  get size(): number {
    return this.subscribers.size;
  }
}
