/**
 * The line `hangar proxy` prints once it listens, and its reading by `hangar up`, which waits for
 * it to know the proxy is up and where. One module for both ends (and small: `up` does not load
 * the proxy itself).
 * @module
 */

export interface ProxyReady {
  url: string;
  httpsUrl: string | undefined;
  metricsUrl: string | undefined;
  appDomain: string;
  region: string;
}

export function proxyReadyLine(r: ProxyReady): string {
  return `hangar proxy: ${r.url}${r.httpsUrl ? ` and ${r.httpsUrl}` : ''}, apps as <app>.${r.appDomain}, region ${r.region}${r.metricsUrl ? `, metrics ${r.metricsUrl}` : ''}`;
}

const READY = /^hangar proxy: (http:\/\/[^\s,]+)(?: and (https:\/\/[^\s,]+))?, apps as <app>\.(\S+), region (\S+?)(?:, metrics (http:\/\/\S+))?$/;

/** The fields of a ready line; undefined for any other line. */
export function parseProxyReadyLine(line: string): ProxyReady | undefined {
  const m = READY.exec(line);
  return m ? { url: m[1]!, httpsUrl: m[2], appDomain: m[3]!, region: m[4]!, metricsUrl: m[5] } : undefined;
}
