/**
 * Output of fake machines: what a real workload would print, kept in memory per machine (bounded),
 * so the logs path (agent → API → CLI) can be exercised without containers. A machine "prints" the
 * lines of its `hangar_fake_stdout` metadata when it starts, and a line when it exits.
 * @module
 */
import { EventEmitter } from 'node:events';
import type { LogLine, ReadLogsOptions } from '../driver.js';

const MAX_LINES_PER_MACHINE = 1000;

export class FakeLogs {
  private readonly lines = new Map<string, LogLine[]>();
  private readonly appended = new EventEmitter();

  constructor() {
    this.appended.setMaxListeners(0);
  }

  append(machineId: string, stream: LogLine['stream'], message: string): void {
    const list = this.lines.get(machineId) ?? [];
    const line: LogLine = { timestamp: new Date().toISOString(), stream, message };
    list.push(line);
    if (list.length > MAX_LINES_PER_MACHINE) list.splice(0, list.length - MAX_LINES_PER_MACHINE);
    this.lines.set(machineId, list);
    this.appended.emit(machineId, line);
  }

  forget(machineId: string): void {
    this.lines.delete(machineId);
  }

  async *read(machineId: string, options: ReadLogsOptions = {}): AsyncGenerator<LogLine> {
    const tail = options.tail ?? 100;
    const pending: LogLine[] = [];
    let wake: (() => void) | undefined;
    const onLine = (line: LogLine) => {
      pending.push(line);
      wake?.();
    };
    if (options.follow) this.appended.on(machineId, onLine);
    try {
      const existing = this.lines.get(machineId) ?? [];
      for (const line of tail > 0 ? existing.slice(-tail) : []) yield line;
      if (!options.follow) return;
      const aborted = new Promise<void>((resolve) => options.signal?.addEventListener('abort', () => resolve(), { once: true }));
      while (!options.signal?.aborted) {
        while (pending.length > 0) yield pending.shift()!;
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
        wake = undefined;
      }
    } finally {
      this.appended.off(machineId, onLine);
    }
  }
}
