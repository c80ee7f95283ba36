/**
 * Apps and organizations: create, find (with the caller's access checked), list and delete.
 * @module
 */
import type { App } from '../../api-types/app.js';
import { HangarError, notFound } from '../../core/errors.js';
import { newAppId } from '../../core/ids.js';
import type { AppRecord, OrgRecord, Store } from '../../store/store.js';
import { assertOrgAccess, type Caller } from '../auth.js';
import type { MachineNotifier } from '../machine-notifier.js';
import type { MachineService } from './machines.js';

export const DEFAULT_ORG = 'personal';

export class AppService {
  constructor(
    private readonly store: Store,
    private readonly machines: MachineService,
    private readonly notifier: MachineNotifier,
  ) {}

  async org(caller: Caller, slug: string): Promise<OrgRecord> {
    const org = await this.store.getOrgBySlug(slug);
    if (!org) throw notFound(`organization "${slug}"`);
    assertOrgAccess(caller, org.id, `organization ${slug}`);
    return org;
  }

  /** The app named `name` with its organization, or 404 (also when the caller may not see it). */
  async find(caller: Caller, name: string): Promise<{ app: AppRecord; org: OrgRecord }> {
    const app = await this.store.getAppByName(name);
    if (!app || (caller.orgId !== null && caller.orgId !== app.org_id)) {
      throw new HangarError('not_found', `app "${name}" not found; create it with \`hangar apps create ${name}\` or POST /v1/apps`);
    }
    const org = (await this.store.getOrgById(app.org_id))!;
    return { app, org };
  }

  async create(caller: Caller, request: { name: string; org_slug?: string; network?: string }): Promise<AppRecord> {
    const org = await this.org(caller, request.org_slug ?? DEFAULT_ORG);
    return this.store.createApp({ id: newAppId(), name: request.name, org_id: org.id, network: request.network ?? 'default', status: 'pending' });
  }

  async list(caller: Caller, orgSlug: string): Promise<App[]> {
    const org = await this.org(caller, orgSlug);
    const apps = await this.store.listApps(org.id);
    const counts = await this.store.countLiveMachines(apps.map((a) => a.id));
    return apps.map((app) => renderApp(app, org, counts.get(app.id) ?? 0));
  }

  async render(app: AppRecord, org: OrgRecord): Promise<App> {
    const counts = await this.store.countLiveMachines([app.id]);
    return renderApp(app, org, counts.get(app.id) ?? 0);
  }

  /** Deletes an app; with `force`, its machines are destroyed first, otherwise they must be gone. */
  async delete(caller: Caller, name: string, force: boolean): Promise<void> {
    const { app } = await this.find(caller, name);
    const live = (await this.store.listMachines(app.id)).filter((m) => m.state !== 'destroyed');
    if (live.length > 0 && !force) {
      throw new HangarError('failed_precondition', `app ${name} still has ${live.length} machine${live.length > 1 ? 's' : ''}; destroy them first or delete with force=true`);
    }
    for (const machine of live) await this.machines.destroy(app, machine.id, undefined, true, true).catch((err) => {
      if (!(err instanceof HangarError && err.code === 'not_found')) throw err;
    });
    const all = await this.store.listMachines(app.id, { includeDeleted: true });
    await this.store.deleteApp(app.id);
    for (const machine of all) this.notifier.changed(machine.id);
  }
}

export function orgNetworkCidr(orgId: number): string {
  return `fdaa:0:${orgId.toString(16)}::/48`;
}

function renderApp(app: AppRecord, org: OrgRecord, liveMachines: number): App {
  return {
    id: app.id,
    name: app.name,
    status: liveMachines > 0 ? 'deployed' : 'pending',
    organization: { name: org.name, slug: org.slug, internal_numeric_id: org.id },
    network: app.network,
    network_cidr: orgNetworkCidr(org.id),
    internal_numeric_id: app.numeric_id,
    machine_count: liveMachines,
    volume_count: 0,
  };
}
