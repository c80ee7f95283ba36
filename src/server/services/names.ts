/**
 * Generated machine names in Fly's style (`quiet-river-4821`): readable, DNS-safe, unique per app.
 * @module
 */
import { randomInt } from 'node:crypto';

const ADJECTIVES = ['amber', 'bold', 'brave', 'calm', 'crisp', 'dark', 'eager', 'fancy', 'gentle', 'green', 'holy', 'icy', 'jolly', 'keen', 'lively', 'misty', 'noble', 'odd', 'proud', 'quiet', 'rapid', 'shy', 'snowy', 'swift', 'tiny', 'vivid', 'wild', 'young'];
const NOUNS = ['bird', 'brook', 'cloud', 'dawn', 'dew', 'field', 'fire', 'flower', 'forest', 'frost', 'glade', 'hill', 'lake', 'leaf', 'meadow', 'moon', 'night', 'pine', 'rain', 'river', 'sea', 'shadow', 'sky', 'star', 'sun', 'thunder', 'wave', 'wind'];

/** A random name; the caller checks it against the app's live machines. */
export function generateMachineName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}-${randomInt(1000, 10000)}`;
}
