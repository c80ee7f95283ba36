/**
 * Wire schemas for apps and organizations (`/v1/apps`, `/v1/orgs`, `/v1/platform`).
 * @module
 */
import { z } from 'zod';
import { DnsLabel } from './machine.js';

/** Accepts Fly's `name` and the older docs' `app_name`. */
export const CreateAppRequest = z
  .object({
    name: DnsLabel.optional(),
    app_name: DnsLabel.optional(),
    org_slug: z.string().min(1).optional(),
    network: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lowercase letters, digits, dashes or underscores').optional(),
    enable_subdomains: z.boolean().optional(),
    idempotency_key: z.string().optional(),
    app_role_id: z.string().optional(),
  })
  .refine((r) => r.name !== undefined || r.app_name !== undefined, { message: 'name is required', path: ['name'] });

export interface AppOrganizationInfo {
  name: string;
  slug: string;
  internal_numeric_id: number;
}

export interface App {
  id: string;
  name: string;
  status: string;
  organization: AppOrganizationInfo;
  network: string;
  network_cidr: string;
  internal_numeric_id: number;
  machine_count: number;
  volume_count: number;
}

export interface ListAppsResponse {
  total_apps: number;
  apps: App[];
}

export interface CreateAppResponse {
  id: string;
  created_at: number;
}

export interface RegionRow {
  code: string;
  name: string;
  geo_region: string;
  latitude: number;
  longitude: number;
  gateway_available: boolean;
  requires_paid_plan: boolean;
  deprecated: boolean;
  mpg_available: boolean;
}

export interface RegionsResponse {
  nearest: string;
  regions: RegionRow[];
}

export interface OrgMachine {
  id: string;
  name: string;
  app_name: string;
  state: string;
  region: string;
  private_ip: string;
  version: string;
  created_at: string;
  updated_at: string;
  config: { image: string; guest?: unknown; metadata?: Record<string, string> };
}

export interface OrgMachinesResponse {
  machines: OrgMachine[];
  next_cursor?: string;
  last_machine_id?: string;
  last_updated_at?: string;
}
