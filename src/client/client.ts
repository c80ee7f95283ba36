/**
 * The typed client of Hangar's Machines API. It speaks Fly's wire format (`baseUrl + "/v1"`), so
 * it also works against anything else that does. Every method knows the OpenAPI path template it
 * calls; `onResponse` sees that template with each answer, so a test can check every body against
 * the OpenAPI document.
 *
 * ```ts
 * const client = new HangarClient({ baseUrl: 'http://127.0.0.1:4280', token });
 * const machine = await client.machines.create('web', { config: { image: 'nginx' } });
 * await client.machines.wait('web', machine.id, { state: 'started', version: machine.version });
 * ```
 * @module
 */
import type {
  App,
  CreateAppResponse,
  ListAppsResponse,
  OrgMachinesResponse,
  RegionsResponse,
} from '../api-types/app.js';
import type {
  CreateMachineRequest,
  ExecResponse,
  Lease,
  Machine,
  MachineEvent,
  MachineVersion,
  ProcessStat,
  UpdateMachineRequest,
  WaitMachineResponse,
  LogEntry,
} from '../api-types/machine.js';
import { parseNdjson } from '../core/ndjson.js';
import type { GcImagesResponse, ImportImageResponse, ListImagesResponse } from '../api-types/image.js';
import { HangarError } from '../core/errors.js';
import { HangarApiError, networkError, timeoutError, type RequestDescription } from './errors.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** What `onResponse` receives for every answer (2xx or not). */
export interface ResponseInfo {
  method: string;
  /** OpenAPI path template, e.g. `/v1/apps/{app_name}/machines/{machine_id}`. */
  path: string;
  /** The concrete URL that was requested. */
  url: string;
  status: number;
  /** The parsed JSON body; `undefined` when empty, the raw text when it is not JSON. */
  body: unknown;
  headers: Headers;
}

export interface HangarClientOptions {
  /** e.g. `http://127.0.0.1:4280`; `/v1` is appended. A trailing slash or `/v1` is tolerated. */
  baseUrl: string;
  token?: string;
  fetch?: FetchLike;
  onResponse?: (info: ResponseInfo) => void;
  /** Per-request timeout; long-polling calls (`wait`, `exec`) get their own timeout on top. Default 30 s. */
  timeoutMs?: number;
  /** Extra headers on every request (e.g. `fly-force-instance-id`). */
  headers?: Record<string, string>;
}

export interface LeaseOption {
  /** Sent as the `fly-machine-lease-nonce` header. */
  nonce?: string;
}

export interface ListMachinesOptions {
  region?: string;
  state?: string | string[];
  include_deleted?: boolean;
  include_leases?: boolean;
  summary?: boolean;
  /** Exact-match filters, sent as `metadata.<key>=<value>`. */
  metadata?: Record<string, string>;
  limit?: number;
  cursor?: string;
}

export interface StopOptions extends LeaseOption {
  signal?: string;
  /** Go duration string (`"10s"`) or seconds. */
  timeout?: string | number;
}

export interface RestartOptions extends StopOptions {
  force_stop?: boolean;
}

export interface WaitOptions {
  state?: string | string[];
  /** Seconds the server may block (1-60 on Fly). */
  timeout?: number;
  version?: string;
  from_event_id?: string;
}

export interface ExecOptions {
  /** argv array; a string is sent as the deprecated single-string `cmd`. */
  command: string[] | string;
  stdin?: string;
  /** Seconds. */
  timeout?: number;
  container?: string;
}

export interface StartResponse {
  previous_state?: string;
  migrated?: boolean;
  new_host?: string;
  message?: string;
  status?: string;
}

export interface CreateAppInput {
  name: string;
  org_slug?: string;
  network?: string;
}

export interface UpdateMetadataInput {
  metadata: Record<string, string | null>;
  machine_version?: string;
}

export interface ListOrgMachinesOptions {
  region?: string;
  state?: string | string[];
  include_deleted?: boolean;
  summary?: boolean;
  updated_after?: string;
  limit?: number;
  cursor?: string;
}

export type Query = Record<string, string | number | boolean | string[] | undefined>;

export interface CallSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path template with `{param}` segments. */
  path: string;
  params?: Record<string, string>;
  query?: Query;
  body?: unknown;
  nonce?: string | undefined;
  operation: string;
  /** Extra time on top of `timeoutMs` for calls that block on the server. */
  extraTimeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const LEASE_HEADER = 'fly-machine-lease-nonce';

export class HangarClient {
  readonly baseUrl: string;
  readonly apps: AppsApi;
  readonly machines: MachinesApi;
  readonly leases: LeasesApi;
  readonly metadata: MetadataApi;
  readonly orgs: OrgsApi;
  readonly platform: PlatformApi;
  readonly images: ImagesApi;
  private readonly token: string | undefined;
  private readonly fetchImpl: FetchLike;
  private readonly onResponse: ((info: ResponseInfo) => void) | undefined;
  private readonly timeoutMs: number;
  private readonly extraHeaders: Record<string, string>;

  constructor(options: HangarClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
    this.token = options.token;
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.onResponse = options.onResponse;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.extraHeaders = options.headers ?? {};
    const call = <T>(spec: CallSpec) => this.call<T>(spec);
    this.apps = new AppsApi(call);
    this.machines = new MachinesApi(call);
    this.leases = new LeasesApi(call);
    this.metadata = new MetadataApi(call);
    this.orgs = new OrgsApi(call);
    this.platform = new PlatformApi(call);
    this.images = new ImagesApi(call, (spec) => this.upload(spec));
  }

  /**
   * Streams a request body (an image archive) and decodes the JSON answer. No overall timeout: the
   * body may be gigabytes; `signal` cancels.
   */
  async upload<T>(spec: UploadSpec): Promise<T> {
    const url = this.baseUrl + spec.path + encodeQuery(spec.query ?? {});
    const request: RequestDescription = { operation: spec.operation, method: 'POST', path: spec.path, url };
    const headers: Record<string, string> = { accept: 'application/json', 'content-type': spec.contentType, ...this.extraHeaders };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (spec.size !== undefined) headers['content-length'] = String(spec.size);
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(url, {
        method: 'POST', headers, body: spec.body as unknown as RequestInit['body'], duplex: 'half', ...(spec.signal ? { signal: spec.signal } : {}),
      } as RequestInit);
      text = await response.text();
    } catch (err) {
      throw networkError(request, this.baseUrl, err);
    }
    const body = decodeBody(text);
    this.onResponse?.({ method: 'POST', path: spec.path, url, status: response.status, body, headers: response.headers });
    if (response.status < 200 || response.status >= 300) {
      throw new HangarApiError(request, response.status, body, response.headers.get('fly-request-id') ?? undefined);
    }
    return body as T;
  }

  /**
   * Streams an app's machine logs (a Hangar extension: NDJSON `LogEntry` lines, oldest first).
   * With `follow`, keeps yielding new lines until `signal` aborts.
   */
  async *logs(app: string, options: { machine?: string; tail?: number; follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<LogEntry> {
    const query = encodeQuery({ machine: options.machine, tail: options.tail, follow: options.follow });
    const url = `${this.baseUrl}/v1/apps/${encodeURIComponent(app)}/logs${query}`;
    const request: RequestDescription = { operation: `read logs of app ${app}`, method: 'GET', path: '/v1/apps/{app_name}/logs', url };
    const headers: Record<string, string> = { accept: 'application/x-ndjson', ...this.extraHeaders };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, { method: 'GET', headers, ...(options.signal ? { signal: options.signal } : {}) });
    } catch (err) {
      if (options.signal?.aborted) return;
      throw networkError(request, this.baseUrl, err);
    }
    if (!response.ok || !response.body) {
      throw new HangarApiError(request, response.status, decodeBody(await response.text()), response.headers.get('fly-request-id') ?? undefined);
    }
    try {
      yield* parseNdjson<LogEntry>(response.body as unknown as AsyncIterable<Uint8Array>);
    } catch (err) {
      if (!options.signal?.aborted) throw networkError(request, this.baseUrl, err);
    }
  }

  /** Sends one request and decodes the answer; the building block of every method. */
  async call<T>(spec: CallSpec): Promise<T> {
    const url = this.baseUrl + fillPath(spec.path, spec.params ?? {}) + encodeQuery(spec.query ?? {});
    const request: RequestDescription = { operation: spec.operation, method: spec.method, path: spec.path, url };
    const headers: Record<string, string> = { accept: 'application/json', ...this.extraHeaders };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (spec.nonce) headers[LEASE_HEADER] = spec.nonce;
    let payload: string | undefined;
    if (spec.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(spec.body);
    }
    const timeoutMs = this.timeoutMs + (spec.extraTimeoutMs ?? 0);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response: Response;
    let text: string;
    try {
      try {
        response = await this.fetchImpl(url, { method: spec.method, headers, body: payload, signal: controller.signal });
        text = await response.text();
      } catch (err) {
        if (controller.signal.aborted) throw timeoutError(request, this.baseUrl, timeoutMs, err);
        throw networkError(request, this.baseUrl, err);
      }
    } finally {
      clearTimeout(timer);
    }
    const body = decodeBody(text);
    this.onResponse?.({ method: spec.method, path: spec.path, url, status: response.status, body, headers: response.headers });
    if (response.status < 200 || response.status >= 300) {
      throw new HangarApiError(request, response.status, body, response.headers.get('fly-request-id') ?? undefined);
    }
    return body as T;
  }
}

type Call = <T>(spec: CallSpec) => Promise<T>;

export interface UploadSpec {
  path: string;
  query?: Query;
  body: AsyncIterable<Uint8Array>;
  contentType: string;
  size?: number;
  operation: string;
  signal?: AbortSignal;
}

export interface ImportImageOptions {
  /** `NAME[:TAG]`; default the archive's own name. */
  name?: string;
  /** Only the hosts of this region (default: every connected host). */
  region?: string;
  signal?: AbortSignal;
}

/** Hangar's image routes (an extension; docs/images.md): archives for hosts without a registry. */
export class ImagesApi {
  constructor(private readonly call: Call, private readonly upload: <T>(spec: UploadSpec) => Promise<T>) {}

  /**
   * `POST /v1/images/import`: loads an oci-archive or docker-archive (a file path, or a byte stream)
   * on the hosts; a machine config's `image` can then name it.
   */
  async import(source: string | AsyncIterable<Uint8Array>, options: ImportImageOptions = {}): Promise<ImportImageResponse> {
    let body: AsyncIterable<Uint8Array>;
    let size: number | undefined;
    const what = typeof source === 'string' ? source : 'image archive';
    if (typeof source === 'string') {
      const { createReadStream } = await import('node:fs');
      const { stat } = await import('node:fs/promises');
      const st = await stat(source).catch(() => undefined);
      if (!st?.isFile()) throw new HangarError('invalid_argument', `image archive ${source} does not exist or is not a file; check the path`);
      size = st.size;
      body = createReadStream(source);
    } else {
      body = source;
    }
    return this.upload({
      path: '/v1/images/import', query: { name: options.name, region: options.region }, body, contentType: 'application/x-tar',
      ...(size !== undefined ? { size } : {}), ...(options.signal ? { signal: options.signal } : {}),
      operation: `import ${what}${options.name ? ` as ${options.name}` : ''}`,
    });
  }

  /** `GET /v1/images` */
  list(options: { region?: string } = {}): Promise<ListImagesResponse> {
    return this.call({ method: 'GET', path: '/v1/images', query: { region: options.region }, operation: 'list images' });
  }

  /** `POST /v1/images/gc`: deletes images no machine uses now (`grace`: keep imports younger than this many seconds). */
  gc(options: { region?: string; grace?: number } = {}): Promise<GcImagesResponse> {
    return this.call({ method: 'POST', path: '/v1/images/gc', query: { region: options.region, grace: options.grace }, operation: 'collect unused images', extraTimeoutMs: 600_000 });
  }
}

const APPS = '/v1/apps';
const APP = '/v1/apps/{app_name}';
const MACHINES = '/v1/apps/{app_name}/machines';
const MACHINE = '/v1/apps/{app_name}/machines/{machine_id}';

function machineTarget(app: string, id: string): string {
  return `machine ${id} (app ${app})`;
}

export class AppsApi {
  constructor(private readonly call: Call) {}

  /** `GET /v1/apps?org_slug=` */
  list(orgSlug = 'personal'): Promise<ListAppsResponse> {
    return this.call({ method: 'GET', path: APPS, query: { org_slug: orgSlug }, operation: `list apps (org ${orgSlug})` });
  }

  /** `POST /v1/apps` */
  create(input: CreateAppInput): Promise<CreateAppResponse> {
    const body = { name: input.name, org_slug: input.org_slug ?? 'personal', ...(input.network ? { network: input.network } : {}) };
    return this.call({ method: 'POST', path: APPS, body, operation: `create app ${input.name}` });
  }

  /** `GET /v1/apps/{app_name}` */
  get(name: string): Promise<App> {
    return this.call({ method: 'GET', path: APP, params: { app_name: name }, operation: `get app ${name}` });
  }

  /** `DELETE /v1/apps/{app_name}` */
  async delete(name: string, options: { force?: boolean } = {}): Promise<void> {
    await this.call({
      method: 'DELETE', path: APP, params: { app_name: name }, query: { force: options.force },
      operation: `delete app ${name}`,
    });
  }
}

export class MachinesApi {
  constructor(private readonly call: Call) {}

  /** `GET /v1/apps/{app_name}/machines` */
  list(app: string, options: ListMachinesOptions = {}): Promise<Machine[]> {
    const { metadata, state, ...rest } = options;
    const query: Query = { ...rest, state: Array.isArray(state) ? state.join(',') : state };
    for (const [key, value] of Object.entries(metadata ?? {})) query[`metadata.${key}`] = value;
    return this.call({ method: 'GET', path: MACHINES, params: { app_name: app }, query, operation: `list machines of app ${app}` });
  }

  /** `POST /v1/apps/{app_name}/machines` */
  create(app: string, request: CreateMachineRequest): Promise<Machine> {
    return this.call({
      method: 'POST', path: MACHINES, params: { app_name: app }, body: request,
      operation: `create machine${request.name ? ` ${request.name}` : ''} in app ${app}`,
    });
  }

  /** `GET /v1/apps/{app_name}/machines/{machine_id}` */
  get(app: string, id: string, options: { version?: string; include_leases?: boolean } = {}): Promise<Machine> {
    return this.call({ method: 'GET', path: MACHINE, params: ids(app, id), query: { ...options }, operation: `get ${machineTarget(app, id)}` });
  }

  /** `POST /v1/apps/{app_name}/machines/{machine_id}`: full replacement of `config`. */
  update(app: string, id: string, request: UpdateMachineRequest, options: LeaseOption = {}): Promise<Machine> {
    return this.call({
      method: 'POST', path: MACHINE, params: ids(app, id), body: request, nonce: options.nonce,
      operation: `update ${machineTarget(app, id)}`,
    });
  }

  /** `DELETE /v1/apps/{app_name}/machines/{machine_id}?force=` (also sends fly-go's `kill=`). */
  async delete(app: string, id: string, options: { force?: boolean } & LeaseOption = {}): Promise<void> {
    const query: Query = options.force === undefined ? {} : { force: options.force, kill: options.force };
    await this.call({
      method: 'DELETE', path: MACHINE, params: ids(app, id), query, nonce: options.nonce,
      operation: `destroy ${machineTarget(app, id)}`,
    });
  }

  /** `POST .../start` */
  async start(app: string, id: string, options: LeaseOption = {}): Promise<StartResponse> {
    const body = await this.action<StartResponse | undefined>('start', app, id, options);
    return body ?? {};
  }

  /** `POST .../stop` with `{signal, timeout}` */
  async stop(app: string, id: string, options: StopOptions = {}): Promise<void> {
    const body: Record<string, string> = {};
    if (options.signal !== undefined) body.signal = options.signal;
    if (options.timeout !== undefined) body.timeout = toDuration(options.timeout);
    await this.action('stop', app, id, options, Object.keys(body).length > 0 ? body : undefined);
  }

  /** `POST .../restart?signal=&timeout=&force_stop=` */
  async restart(app: string, id: string, options: RestartOptions = {}): Promise<void> {
    const query: Query = {
      signal: options.signal,
      timeout: options.timeout === undefined ? undefined : toDuration(options.timeout),
      force_stop: options.force_stop,
    };
    await this.call({
      method: 'POST', path: `${MACHINE}/restart`, params: ids(app, id), query, nonce: options.nonce,
      operation: `restart ${machineTarget(app, id)}`,
    });
  }

  /** `POST .../suspend` */
  async suspend(app: string, id: string, options: LeaseOption = {}): Promise<void> {
    await this.action('suspend', app, id, options);
  }

  /** `POST .../signal` with a name (`"SIGUSR1"`) or a number (`9`, as flyctl's `kill` sends). */
  async signal(app: string, id: string, signal: string | number): Promise<void> {
    await this.call({
      method: 'POST', path: `${MACHINE}/signal`, params: ids(app, id), body: { signal },
      operation: `signal ${machineTarget(app, id)} with ${signal}`,
    });
  }

  /** `POST .../cordon` */
  async cordon(app: string, id: string, options: LeaseOption = {}): Promise<void> {
    await this.action('cordon', app, id, options);
  }

  /** `POST .../uncordon` */
  async uncordon(app: string, id: string, options: LeaseOption = {}): Promise<void> {
    await this.action('uncordon', app, id, options);
  }

  /** `GET .../wait?state=&timeout=&version=&from_event_id=`; rejects with code `timeout` (408). */
  wait(app: string, id: string, options: WaitOptions = {}): Promise<WaitMachineResponse> {
    const states = options.state === undefined ? undefined : Array.isArray(options.state) ? options.state : [options.state];
    const query: Query = {
      state: states,
      timeout: options.timeout,
      version: options.version,
      from_event_id: options.from_event_id,
    };
    const wanted = states?.join('|') ?? 'started';
    return this.call({
      method: 'GET', path: `${MACHINE}/wait`, params: ids(app, id), query,
      extraTimeoutMs: (options.timeout ?? 60) * 1000,
      operation: `wait for ${machineTarget(app, id)} to be ${wanted}`,
    });
  }

  /** `GET .../events` (newest first) */
  events(app: string, id: string, options: { limit?: number } = {}): Promise<MachineEvent[]> {
    return this.call({
      method: 'GET', path: `${MACHINE}/events`, params: ids(app, id), query: { limit: options.limit },
      operation: `list events of ${machineTarget(app, id)}`,
    });
  }

  /** `GET .../versions` */
  versions(app: string, id: string): Promise<MachineVersion[]> {
    return this.call({ method: 'GET', path: `${MACHINE}/versions`, params: ids(app, id), operation: `list versions of ${machineTarget(app, id)}` });
  }

  /** `GET .../ps` */
  ps(app: string, id: string, options: { sort_by?: string; order?: string } = {}): Promise<ProcessStat[]> {
    return this.call({
      method: 'GET', path: `${MACHINE}/ps`, params: ids(app, id), query: { ...options },
      operation: `list processes of ${machineTarget(app, id)}`,
    });
  }

  /** `POST .../exec`; the answer carries stdout, stderr and the exit code. */
  exec(app: string, id: string, options: ExecOptions): Promise<ExecResponse> {
    const body: Record<string, unknown> = typeof options.command === 'string' ? { cmd: options.command } : { command: options.command };
    if (options.stdin !== undefined) body.stdin = options.stdin;
    if (options.timeout !== undefined) body.timeout = options.timeout;
    if (options.container !== undefined) body.container = options.container;
    return this.call({
      method: 'POST', path: `${MACHINE}/exec`, params: ids(app, id), body,
      extraTimeoutMs: (options.timeout ?? 30) * 1000,
      operation: `exec in ${machineTarget(app, id)}`,
    });
  }

  private action<T = unknown>(verb: string, app: string, id: string, options: LeaseOption, body?: unknown): Promise<T> {
    return this.call<T>({
      method: 'POST', path: `${MACHINE}/${verb}`, params: ids(app, id), body, nonce: options.nonce,
      operation: `${verb} ${machineTarget(app, id)}`,
    });
  }
}

/** Leases come wrapped as `{status: "success", data: Lease}`; the flat `Lease` of the spec is accepted too. */
export class LeasesApi {
  constructor(private readonly call: Call) {}

  /** `GET .../lease`; rejects with `not_found` when the machine has no lease. */
  async get(app: string, id: string): Promise<Lease> {
    return unwrapLease(await this.call({ method: 'GET', path: `${MACHINE}/lease`, params: ids(app, id), operation: `get lease of ${machineTarget(app, id)}` }));
  }

  /** `POST .../lease`; pass the current `nonce` to refresh a lease you hold. */
  async acquire(app: string, id: string, options: { ttl?: number; description?: string } = {}, nonce?: string): Promise<Lease> {
    const body: Record<string, unknown> = {};
    if (options.ttl !== undefined) body.ttl = options.ttl;
    if (options.description !== undefined) body.description = options.description;
    return unwrapLease(await this.call({
      method: 'POST', path: `${MACHINE}/lease`, params: ids(app, id), body, nonce,
      operation: `${nonce ? 'refresh' : 'acquire'} lease on ${machineTarget(app, id)}`,
    }));
  }

  /** `DELETE .../lease` with the nonce header. */
  async release(app: string, id: string, nonce: string): Promise<void> {
    await this.call({ method: 'DELETE', path: `${MACHINE}/lease`, params: ids(app, id), nonce, operation: `release lease on ${machineTarget(app, id)}` });
  }
}

export class MetadataApi {
  constructor(private readonly call: Call) {}

  /** `GET .../metadata` */
  async get(app: string, id: string): Promise<Record<string, string>> {
    const body = await this.call<Record<string, string> | undefined>({
      method: 'GET', path: `${MACHINE}/metadata`, params: ids(app, id), operation: `get metadata of ${machineTarget(app, id)}`,
    });
    return body ?? {};
  }

  /** `PATCH .../metadata`: a merge; `null` deletes a key. */
  async update(app: string, id: string, input: UpdateMetadataInput): Promise<void> {
    await this.call({ method: 'PATCH', path: `${MACHINE}/metadata`, params: ids(app, id), body: input, operation: `update metadata of ${machineTarget(app, id)}` });
  }

  /** `GET .../metadata/{key}` → the value. */
  async getKey(app: string, id: string, key: string): Promise<string> {
    const body = await this.call<{ value: string }>({
      method: 'GET', path: `${MACHINE}/metadata/{key}`, params: { ...ids(app, id), key },
      operation: `get metadata key ${key} of ${machineTarget(app, id)}`,
    });
    return body.value;
  }

  /** `POST .../metadata/{key}` */
  async setKey(app: string, id: string, key: string, value: string): Promise<void> {
    await this.call({
      method: 'POST', path: `${MACHINE}/metadata/{key}`, params: { ...ids(app, id), key }, body: { value },
      operation: `set metadata key ${key} of ${machineTarget(app, id)}`,
    });
  }

  /** `DELETE .../metadata/{key}` */
  async deleteKey(app: string, id: string, key: string): Promise<void> {
    await this.call({
      method: 'DELETE', path: `${MACHINE}/metadata/{key}`, params: { ...ids(app, id), key },
      operation: `delete metadata key ${key} of ${machineTarget(app, id)}`,
    });
  }
}

export class OrgsApi {
  constructor(private readonly call: Call) {}

  /** `GET /v1/orgs/{org_slug}/machines` */
  machines(orgSlug: string, options: ListOrgMachinesOptions = {}): Promise<OrgMachinesResponse> {
    const { state, ...rest } = options;
    return this.call({
      method: 'GET', path: '/v1/orgs/{org_slug}/machines', params: { org_slug: orgSlug },
      query: { ...rest, state: Array.isArray(state) ? state.join(',') : state },
      operation: `list machines of org ${orgSlug}`,
    });
  }
}

export class PlatformApi {
  constructor(private readonly call: Call) {}

  /** `GET /v1/platform/regions` (no auth needed). */
  regions(): Promise<RegionsResponse> {
    return this.call({ method: 'GET', path: '/v1/platform/regions', operation: 'list regions' });
  }
}

function ids(app: string, id: string): Record<string, string> {
  return { app_name: app, machine_id: id };
}

/** Replaces `{name}` segments with URI-encoded values; a missing value is a programming error. */
export function fillPath(template: string, params: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`missing path parameter ${name} for ${template}`);
    return encodeURIComponent(value);
  });
}

/** Skips undefined values; arrays become repeated keys (`state=a&state=b`). */
export function encodeQuery(query: Query): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) search.append(key, item);
    else search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

function decodeBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function toDuration(value: string | number): string {
  return typeof value === 'number' ? `${value}s` : value;
}

/** Accepts `{status, data: Lease}` (what flyctl decodes) and a flat `Lease`. */
export function unwrapLease(body: unknown): Lease {
  if (body && typeof body === 'object' && 'data' in body) {
    const data = (body as { data: unknown }).data;
    if (data && typeof data === 'object') return data as Lease;
  }
  return body as Lease;
}
