/**
 * Prometheus metrics of the proxy in the text exposition format (no client library: counters,
 * gauges and one histogram are all we need).
 * @module
 */

type Labels = Record<string, string>;

/** The series key of `labels` (sorted, escaped); callers on a hot path compute it once and use `incKey`. */
export const labelKey = (labels: Labels | undefined) =>
  labels ? Object.keys(labels).sort().map((k) => `${k}="${String(labels[k]).replace(/["\\\n]/g, '_')}"`).join(',') : '';

/** One series' value; a hot path keeps the cell and counts with `cell.n++`. */
export interface Cell {
  n: number;
}

class Counter {
  private readonly values = new Map<string, Cell>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels?: Labels, by = 1): void {
    this.incKey(labelKey(labels), by);
  }
  incKey(k: string, by = 1): void {
    this.cell(k).n += by;
  }
  /** The series `k` (made at 0 when new); series are never removed, so a kept cell stays valid. */
  cell(k: string): Cell {
    let c = this.values.get(k);
    if (!c) this.values.set(k, (c = { n: 0 }));
    return c;
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels))?.n ?? 0;
  }
  snapshot(): [string, number][] {
    return [...this.values].map(([k, c]) => [k, c.n]);
  }
  absorb(series: [string, number][]): void {
    for (const [k, n] of series) this.incKey(k, n);
  }
  render(type = 'counter'): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${type}`];
    if (this.values.size === 0 && type === 'gauge') lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ''} ${v.n}`);
    return lines.join('\n');
  }
}

class Gauge extends Counter {
  set(value: number, labels?: Labels): void {
    this.inc(labels, value - this.get(labels));
  }
  override render(): string {
    return super.render('gauge');
  }
}

interface HistogramSnapshot {
  counts: number[];
  sum: number;
  count: number;
}

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }
  /** Counts `v` in its own bucket only (one per request); `render` makes the counts cumulative. */
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) {
      if (v <= this.buckets[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
  snapshot(): HistogramSnapshot {
    return { counts: [...this.counts], sum: this.sum, count: this.count };
  }
  absorb(h: HistogramSnapshot): void {
    h.counts.forEach((n, i) => (this.counts[i]! += n));
    this.sum += h.sum;
    this.count += h.count;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    let cumulative = 0;
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${(cumulative += this.counts[i]!)}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

export type MetricsSnapshot = Record<string, [string, number][] | HistogramSnapshot>;

export class ProxyMetrics {
  readonly requests = new Counter('hangar_proxy_requests_total', 'HTTP requests answered, by app and status class');
  readonly latency = new Histogram('hangar_proxy_request_duration_seconds', 'Time from request head to response end', [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  ]);
  readonly activeConnections = new Gauge('hangar_proxy_active_connections', 'Client connections open, by listener kind');
  readonly tcpConnections = new Counter('hangar_proxy_tcp_connections_total', 'Raw TCP connections accepted, by app');
  readonly autostarts = new Counter('hangar_proxy_autostarts_total', 'Machines started or resumed for traffic, by app and prior state');
  readonly autostartFailures = new Counter('hangar_proxy_autostart_failures_total', 'Autostarts that failed, by app');
  readonly autostartSeconds = new Histogram('hangar_proxy_autostart_duration_seconds', 'Start call to the machine accepting connections', [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  ]);
  readonly autostops = new Counter('hangar_proxy_autostops_total', 'Machines stopped or suspended for idleness, by app and action');
  readonly queueDepth = new Gauge('hangar_proxy_queue_depth', 'Requests waiting for capacity or a starting machine');
  readonly replays = new Counter('hangar_proxy_replays_total', 'Requests replayed on a fly-replay answer');
  readonly routeEvents = new Counter('hangar_proxy_route_events_total', 'Route watch events applied, by type');

  /** Every series as plain data (sent from a data-plane thread to the one that serves /metrics). */
  snapshot(): MetricsSnapshot {
    const out: MetricsSnapshot = {};
    for (const [name, m] of Object.entries(this)) out[name] = (m as Counter | Histogram).snapshot();
    return out;
  }

  /** Adds another thread's snapshot into these series (gauges add too: each thread counts its own part). */
  absorb(s: MetricsSnapshot): void {
    for (const [name, m] of Object.entries(this)) {
      const part = s[name];
      if (part) (m as { absorb(p: unknown): void }).absorb(part);
    }
  }

  render(): string {
    return `${[
      this.requests.render(), this.latency.render(), this.activeConnections.render(), this.tcpConnections.render(), this.autostarts.render(),
      this.autostartFailures.render(), this.autostartSeconds.render(), this.autostops.render(), this.queueDepth.render(), this.replays.render(),
      this.routeEvents.render(),
    ].join('\n')}\n`;
  }
}
