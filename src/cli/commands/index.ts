/**
 * The command registry: every group (noun) and command. To add a command, write
 * `commands/<noun>/<verb>.ts` exporting `createCommand({...})` and list it here.
 * @module
 */
import type { Command, Group } from '../framework.js';
import { appsCreate } from './apps/create.js';
import { appsDestroy } from './apps/destroy.js';
import { appsList } from './apps/list.js';
import { authToken } from './auth/token.js';
import { imageGc } from './image/gc.js';
import { imageImport } from './image/import.js';
import { imageList } from './image/list.js';
import { logs } from './logs/logs.js';
import { machineClone } from './machine/clone.js';
import { machineCordon } from './machine/cordon.js';
import { machineCreate } from './machine/create.js';
import { machineDestroy } from './machine/destroy.js';
import { machineExec } from './machine/exec.js';
import { machineKill } from './machine/kill.js';
import { leasesClear } from './machine/leases/clear.js';
import { leasesView } from './machine/leases/view.js';
import { machineList } from './machine/list.js';
import { machineRestart } from './machine/restart.js';
import { machineRun } from './machine/run.js';
import { machineStart } from './machine/start.js';
import { machineStatus } from './machine/status.js';
import { machineStop } from './machine/stop.js';
import { machineSuspend } from './machine/suspend.js';
import { machineUncordon } from './machine/uncordon.js';
import { machineUpdate } from './machine/update.js';
import { machineWait } from './machine/wait.js';
import { version } from './version/version.js';

export const GROUPS: Group[] = [
  { path: ['apps'], aliases: ['app'], description: 'Manage apps' },
  { path: ['machine'], aliases: ['machines', 'm'], description: 'Manage machines' },
  { path: ['machine', 'leases'], aliases: ['lease'], description: 'Manage machine leases' },
  { path: ['auth'], description: 'Show the credentials the CLI uses' },
  { path: ['image'], aliases: ['images'], description: 'Load and list images on hosts without a registry' },
];

export const COMMANDS: Command[] = [
  logs,
  appsCreate, appsList, appsDestroy,
  machineRun, machineCreate, machineList, machineStatus,
  machineStart, machineStop, machineRestart, machineSuspend, machineKill, machineDestroy,
  machineUpdate, machineClone, machineExec, machineCordon, machineUncordon, machineWait,
  leasesView, leasesClear,
  imageImport, imageList, imageGc,
  authToken,
  version,
];
