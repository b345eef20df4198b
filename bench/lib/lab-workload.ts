/**
 * The simulated lab's workload in words, from the code that does the work: the appliance's lab settings
 * (its manifest and resource profile) and, for a setting it leaves out, the default in the guest script
 * that reads it (packer/guest/drivers/test-lab.sh, packer/guest/hedgehog-lab). So the benchmark's text
 * cannot say 4 disks when the driver makes 8.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The default of `${NAME:-value}` in a shell script; throws when the script has none (the text would lie). */
export function shellDefault(script: string, name: string, file: string): string {
  const m = new RegExp(`\\$\\{${name}:-([^}$]+)\\}`).exec(script);
  if (!m) throw new Error(`${file}: no default for ${name} (\${${name}:-…}) found; bench/lib/lab-workload.ts reads it from there`);
  return m[1]!;
}

export interface LabWorkload {
  /** KEY=VALUE as the guest gets them (lab.conf), plus the defaults it uses for what is not set. */
  settings: Record<string, string>;
  /** One sentence for the benchmark's text. */
  description: string;
}

/**
 * The effective workload of an appliance's lab. `settings` are the lab.conf lines the build writes
 * (labSettingsLines); `driver` the lab driver's name; `repoRoot` holds packer/guest.
 */
export function labWorkload(settingsLines: string, driver: string, repoRoot: string): LabWorkload {
  const settings: Record<string, string> = {};
  for (const line of settingsLines.split('\n').filter(Boolean)) {
    const eq = line.indexOf('=');
    settings[line.slice(0, eq)] = line.slice(eq + 1);
  }
  const orchestratorFile = join('packer', 'guest', 'hedgehog-lab');
  const interval = settings['READY_INTERVAL'] ?? shellDefault(readFileSync(join(repoRoot, orchestratorFile), 'utf8'), 'READY_INTERVAL', orchestratorFile);
  const effective: Record<string, string> = { ...settings, READY_INTERVAL: interval };
  const poll = `the orchestrator probes the lab's readiness every ${interval} s (READY_INTERVAL${'READY_INTERVAL' in settings ? ', from the manifest' : `, ${orchestratorFile}'s default`})`;
  if (driver !== 'test-lab') {
    return { settings: effective, description: `lab driver ${driver} with ${Object.entries(effective).map(([k, v]) => `${k}=${v}`).join(', ')}; ${poll}.` };
  }
  const driverFile = join('packer', 'guest', 'drivers', 'test-lab.sh');
  const script = readFileSync(join(repoRoot, driverFile), 'utf8');
  const value = (name: string) => {
    if (name in settings) return { v: settings[name]!, from: 'from the manifest' };
    return { v: shellDefault(script, name, driverFile), from: `${driverFile}'s default` };
  };
  const switches = value('TEST_LAB_SWITCHES');
  const disk = value('TEST_LAB_DISK_MIB');
  effective['TEST_LAB_SWITCHES'] = switches.v;
  effective['TEST_LAB_DISK_MIB'] = disk.v;
  const total = Number(switches.v) * Number(disk.v);
  return {
    settings: effective,
    description:
      `the test-lab driver's init writes ${switches.v} simulated switch disks of ${disk.v} MiB each (TEST_LAB_SWITCHES, ${switches.from}; TEST_LAB_DISK_MIB, ${disk.from}) ` +
      `from /dev/urandom and checksums them (${total} MiB of incompressible data); resume only restarts test-lab.service, which checks the disks' sizes against the lab's manifest; ${poll}.`,
  };
}
