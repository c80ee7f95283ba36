/**
 * The boundary between the agent and whatever actually runs a machine (fake, crun, runc, runsc,
 * qemu). Drivers are small and dumb: they run one version of a machine's workload and report what
 * happened. Restart policy, state bookkeeping, events and recovery decisions live in the agent, so
 * every driver behaves the same. Every driver passes `driver.conformance.ts`.
 * @module
 */
import type { AgentMachineSpec, DriverCapabilities } from '../../api-types/agent.js';
import type { ExecResponse, ProcessStat } from '../../api-types/machine.js';
import { HangarError } from '../../core/errors.js';

export type { DriverCapabilities };

/** How a workload ended. */
export interface ExitInfo {
  exit_code: number;
  /** Signal number that ended it, or 0. */
  signal: number;
  oom_killed: boolean;
  /** True when the agent asked it to stop (stop, restart, destroy); false when it exited by itself. */
  requested_stop: boolean;
  exited_at: number;
}

/** What a driver can see of one machine. `absent` = it knows nothing about this id. */
export type DriverStatus =
  | { state: 'absent' }
  | { state: 'created' }
  | { state: 'running'; pid?: number }
  | { state: 'paused' }
  | { state: 'exited'; exit: ExitInfo };

export interface StopOptions {
  signal: number;
  timeoutMs: number;
}

export interface ExecOptions {
  command: string[];
  stdin?: string;
  timeoutMs: number;
}

/** How much of the killed command's output an exec timeout error quotes. */
const EXEC_TIMEOUT_OUTPUT_TAIL = 300;

/**
 * What every driver throws when an exec outlives its timeout: the command was killed, and the
 * caller gets an error (Fly answers `deadline_exceeded`), not an exit code a command could also
 * return by itself. The message keeps the tail of the output so nothing the command said is lost.
 */
export function execTimeoutError(command: string[], timeoutMs: number, output: { stdout: string; stderr: string }): HangarError {
  const said = (output.stdout + output.stderr).trimEnd();
  const tail = said.length > EXEC_TIMEOUT_OUTPUT_TAIL ? `...${said.slice(-EXEC_TIMEOUT_OUTPUT_TAIL)}` : said;
  const seconds = timeoutMs % 1000 === 0 ? `${timeoutMs / 1000}s` : `${timeoutMs}ms`;
  return new HangarError(
    'timeout',
    `exec: ${JSON.stringify(command)} did not finish within ${seconds} and was killed` +
      (tail ? `; its output so far: ${JSON.stringify(tail)}` : '; it printed nothing') +
      '. Pass a longer timeout (up to 3600 seconds) or start long jobs in the background',
  );
}

/** One line of a machine's output, as `GET /agent/v1/machines/{id}/logs` answers it (NDJSON). */
export interface LogLine {
  timestamp: string;
  stream: 'stdout' | 'stderr';
  message: string;
}

export interface ReadLogsOptions {
  /** Last N lines first (default 100; 0 = none). */
  tail?: number;
  /** Keep answering new lines until `signal` aborts. */
  follow?: boolean;
  signal?: AbortSignal;
}

export interface Driver {
  readonly name: string;
  readonly capabilities: DriverCapabilities;

  /** Prepares a machine version (rootfs, bundle, network) without starting it. Idempotent. */
  create(spec: AgentMachineSpec): Promise<{ privateIp: string; imageDigest?: string }>;
  /** Starts the workload; resolves once it runs. Throws `HangarError` when it cannot start. */
  start(id: string): Promise<void>;
  /** Sends `signal`, escalates to SIGKILL after `timeoutMs`, resolves with the exit. */
  stop(id: string, options: StopOptions): Promise<ExitInfo>;
  signal(id: string, signal: number): Promise<void>;
  suspend(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  exec(id: string, options: ExecOptions): Promise<ExecResponse>;
  ps(id: string): Promise<ProcessStat[]>;
  inspect(id: string): Promise<DriverStatus>;
  /** Removes everything the driver made for this machine. Idempotent; kills a running workload. */
  destroy(id: string): Promise<void>;
  /** Registers the listener for workloads that exit on their own (not through `stop`). */
  onExit(listener: (id: string, exit: ExitInfo) => void): void;
  /**
   * After an agent restart: re-attaches to workloads of `known` ids (so `onExit` fires for them
   * again), removes anything the driver owns that is not in `known`, and reports each known id.
   */
  recover(known: AgentMachineSpec[]): Promise<Map<string, DriverStatus>>;
  close(): Promise<void>;
  /** Optional capability: the workload's stdout/stderr. Throws `not_found` for unknown ids. */
  readLogs?(id: string, options: ReadLogsOptions): AsyncIterable<LogLine>;

  // Optional capability: a local image store (`hangar image import|list|gc`, docs/images.md).
  /** Loads an oci-archive or docker-archive; `name` defaults to the archive's own. */
  importImage?(file: string, name?: string): Promise<{ name: string; digest: string }>;
  /** Every stored image name. */
  listImages?(): Promise<StoredImage[]>;
  /**
   * Deletes images no machine uses. The driver adds the digests of every machine it holds; the
   * agent passes the image names of every machine it knows that is not destroyed (`keepNames`).
   * Imported names stored less than `graceMs` ago are kept.
   */
  gcImages?(options: ImageGcOptions): Promise<{ removed: string[] }>;
  /** Digests of the images of the machines the driver holds (for `in_use` in image lists). */
  imagesInUse?(): Set<string>;
}

export interface StoredImage {
  name: string;
  digest: string;
  source: string;
  stored_at?: string;
}

export interface ImageGcOptions {
  keepNames: string[];
  graceMs: number;
}
