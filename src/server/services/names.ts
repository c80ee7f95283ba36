/**
 * Generated machine names in Fly's style (`quiet-river-4821`): readable, DNS-safe, unique per app.
 * @module
 */
import { randomInt } from 'node:crypto';

const ADJECTIVES = ['amber', 'bold', 'brave', 'calm', 'crisp', 'dark', 'eager', 'fancy', 'gentle', 'green', 'holy', 'icy', 'jolly', 'keen', 'lively', 'misty', 'noble', 'odd', 'proud', 'quiet', 'rapid', 'shy', 'snowy', 'swift', 'tiny', 'vivid', 'wild', 'young'];
const NOUNS = ['bird', 'brook', 'cloud', 'dawn', 'dew', 'field', 'fire', 'flower', 'forest', 'frost', 'glade', 'hill', 'lake', 'leaf', 'meadow', 'moon', 'night', 'pine', 'rain', 'river', 'sea', 'shadow', 'sky', 'star', 'sun', 'thunder', 'wave', 'wind'];

export function generateMachineName(taken: ReadonlySet<string>): string {
  for (;;) {
    const name = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}-${randomInt(1000, 10000)}`;
    if (!taken.has(name)) return name;
  }
}
