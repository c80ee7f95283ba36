/**
 * Wire types of Hangar's image routes (an extension of the Machines API; docs/api.md, docs/images.md).
 * @module
 */
import type { AgentImage } from './agent.js';

export type { AgentImage as HostImage };

/** `POST /v1/images/import`: the image as each chosen host stored it. */
export interface ImportImageResponse {
  name: string;
  digest: string;
  hosts: { host_id: string; region: string; name: string; digest: string }[];
}

/** `GET /v1/images`: every connected host's images; `error` when a host did not answer. */
export interface ListImagesResponse {
  hosts: { host_id: string; region: string; images: AgentImage[]; error?: string }[];
}

/** `POST /v1/images/gc`: what each host deleted. */
export interface GcImagesResponse {
  hosts: { host_id: string; region: string; removed: string[]; error?: string }[];
}
