import { after } from 'node:test';
import { rm } from 'node:fs/promises';
import { runDriverConformance } from '../driver.conformance.js';
import { busyboxSpecs, crunUnavailable, standinDriver, tempDataDir } from './testing.js';

const unavailable = crunUnavailable();
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

if (unavailable) {
  runDriverConformance({ name: `crun (skipped: ${unavailable})`, newDriver: () => { throw new Error(unavailable); }, specs: busyboxSpecs, skip: [{ reason: unavailable, tests: [] }] });
} else {
  runDriverConformance({
    name: 'crun',
    newDriver: async () => {
      const dir = await tempDataDir();
      dirs.push(dir);
      return standinDriver(dir);
    },
    specs: busyboxSpecs,
  });
}
