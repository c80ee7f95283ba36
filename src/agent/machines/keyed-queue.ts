/**
 * Runs tasks one at a time per key (per machine id), in arrival order; different keys run in
 * parallel. Every operation on a machine, including the agent's own reaction to an exit, goes
 * through its queue, so a state check and the change that follows it can never interleave with
 * another operation on the same machine: of two racing starts, the second sees `started` and is
 * refused by the state machine with `failed_precondition`.
 * @module
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.then(
      () => {},
      () => {},
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves when every task queued so far has finished. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }

  /** Whether a task for `key` is running or waiting. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }
}
