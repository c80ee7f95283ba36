/**
 * Wakes waiters when a machine changes. `wait` and (later) the watch stream use it; the catalog
 * calls `changed(id)` after every applied change.
 * @module
 */
export class MachineNotifier {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly watchers = new Set<(machineId: string) => void>();

  /** Calls `listener` with the id of every machine that changes, until the returned function is called. */
  watchAll(listener: (machineId: string) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  changed(machineId: string): void {
    for (const watcher of this.watchers) watcher(machineId);
    const set = this.waiters.get(machineId);
    if (!set) return;
    this.waiters.delete(machineId);
    for (const wake of set) wake();
  }

  /** Resolves true on the next change of `machineId`, false after `timeoutMs` or on abort. */
  next(machineId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      let set = this.waiters.get(machineId);
      if (!set) {
        set = new Set();
        this.waiters.set(machineId, set);
      }
      const done = (changed: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiters.get(machineId)?.delete(wake);
        resolve(changed);
      };
      const wake = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
      signal?.addEventListener('abort', onAbort, { once: true });
      set.add(wake);
    });
  }
}
