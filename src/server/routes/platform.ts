/**
 * `/v1/platform/regions`: the regions that have hosts, with names for Fly's region codes. Public.
 * @module
 */
import type { RegionRow, RegionsResponse } from '../../api-types/app.js';
import type { Router } from '../../http/router.js';
import type { Store } from '../../store/store.js';

/** Names and coordinates for the region codes users already know from Fly. */
const KNOWN_REGIONS: Record<string, [name: string, geo: string, lat: number, lon: number]> = {
  ams: ['Amsterdam, Netherlands', 'eu', 52.37, 4.9], arn: ['Stockholm, Sweden', 'eu', 59.65, 17.93],
  atl: ['Atlanta, Georgia (US)', 'na', 33.64, -84.43], bog: ['Bogotá, Colombia', 'sa', 4.7, -74.14],
  bom: ['Mumbai, India', 'ap', 19.09, 72.87], bos: ['Boston, Massachusetts (US)', 'na', 42.37, -71.01],
  cdg: ['Paris, France', 'eu', 48.86, 2.35], den: ['Denver, Colorado (US)', 'na', 39.74, -104.99],
  dfw: ['Dallas, Texas (US)', 'na', 32.78, -96.8], ewr: ['Secaucus, NJ (US)', 'na', 40.79, -74.06],
  eze: ['Ezeiza, Argentina', 'sa', -34.82, -58.54], fra: ['Frankfurt, Germany', 'eu', 50.11, 8.68],
  gdl: ['Guadalajara, Mexico', 'na', 20.67, -103.35], gig: ['Rio de Janeiro, Brazil', 'sa', -22.81, -43.25],
  gru: ['Sao Paulo, Brazil', 'sa', -23.55, -46.63], hkg: ['Hong Kong, Hong Kong', 'ap', 22.25, 114.2],
  iad: ['Ashburn, Virginia (US)', 'na', 39.03, -77.47], jnb: ['Johannesburg, South Africa', 'af', -26.2, 28.04],
  lax: ['Los Angeles, California (US)', 'na', 33.94, -118.41], lhr: ['London, United Kingdom', 'eu', 51.51, -0.13],
  mad: ['Madrid, Spain', 'eu', 40.42, -3.7], mia: ['Miami, Florida (US)', 'na', 25.76, -80.19],
  nrt: ['Tokyo, Japan', 'ap', 35.62, 139.75], ord: ['Chicago, Illinois (US)', 'na', 41.89, -87.63],
  otp: ['Bucharest, Romania', 'eu', 44.43, 26.1], phx: ['Phoenix, Arizona (US)', 'na', 33.45, -112.07],
  qro: ['Querétaro, Mexico', 'na', 20.62, -100.19], scl: ['Santiago, Chile', 'sa', -33.45, -70.67],
  sea: ['Seattle, Washington (US)', 'na', 47.61, -122.33], sin: ['Singapore, Singapore', 'ap', 1.35, 103.99],
  sjc: ['San Jose, California (US)', 'na', 37.35, -121.96], syd: ['Sydney, Australia', 'ap', -33.87, 151.21],
  waw: ['Warsaw, Poland', 'eu', 52.16, 20.96], yul: ['Montreal, Canada', 'na', 45.49, -73.59],
  yyz: ['Toronto, Canada', 'na', 43.64, -79.39],
};

export function registerPlatformRoutes(router: Router, deps: { store: Store; region: string }): void {
  router.get('/v1/platform/regions', async (): Promise<RegionsResponse> => {
    const codes = new Set([deps.region, ...(await deps.store.listHosts()).map((h) => h.region)]);
    return { nearest: deps.region, regions: [...codes].sort().map(regionRow) };
  });
}

function regionRow(code: string): RegionRow {
  const known = KNOWN_REGIONS[code];
  return {
    code,
    name: known?.[0] ?? `${code} (self-hosted)`,
    geo_region: known?.[1] ?? 'unknown',
    latitude: known?.[2] ?? 0,
    longitude: known?.[3] ?? 0,
    gateway_available: true,
    requires_paid_plan: false,
    deprecated: false,
    mpg_available: false,
  };
}
