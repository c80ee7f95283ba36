import { createCommand } from '../../framework.js';
import { noTokenError } from '../../config.js';

export const authToken = createCommand({
  path: ['auth', 'token'],
  description: 'Print the API token the CLI uses',
  long: 'The token comes from HANGAR_API_TOKEN, else from the config file `hangar up` wrote (~/.hangar/config.json, or $HANGAR_CONFIG_DIR/config.json).',
  handler({ global, out, config }) {
    const resolved = config();
    if (!resolved.token) throw noTokenError();
    if (global.json) return out.json({ token: resolved.token, api_url: resolved.apiUrl, source: resolved.sources.token });
    out.line(resolved.token);
  },
});
