import type { Command } from '../command.js';
import { chooseResources, loadAppliance, readResourceOverrides } from '../../actions/lib/appliance.js';
import { checkOutputDirectory, readString } from '../../actions/lib/inputs.js';
import { defaultAppliance } from '../../actions/lib/pipeline.js';
import { formatPreflightTable, localPreflightOptions, runPreflight } from '../../actions/lib/preflight.js';
import { resolve } from 'node:path';

/** `labforge doctor`: the preflight's local mode, the check `labforge pipeline` makes before anything slow. */
export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Check this machine for `labforge pipeline`: every program it runs (with versions), KVM or TCG, disk, memory; one apt-get line for what is missing.',
  flags: {
    appliance: { type: 'string', description: 'appliance directory with appliance.yml', default: 'packer/demo-lab' },
    profile: { type: 'string', description: "the appliance's resource profile", default: 'the manifest default' },
    'memory-mib': { type: 'string', description: "VM memory in MiB (overrides the profile's)" },
    out: { type: 'string', description: 'the output directory the pipeline would use (free disk is measured there)', default: 'out' },
    'kvm-device': { type: 'string', description: 'the KVM device', default: '/dev/kvm' },
    json: { type: 'boolean', description: 'print the report as JSON (the same shape as labforge preflight) instead of the table' },
  },
  details: [
    'The checks are those of labforge preflight (one module: actions/lib/preflight.ts), plus every program the local',
    "pipeline runs, each with its Debian package; the accelerator is the pipeline's choice (KVM when usable here, else TCG),",
    "and disk and memory are what the appliance's manifest and profile need.",
    'Exit codes: 0 ready, 1 something required is missing or too small (the apt-get line installs the missing programs), 2 bad input.',
  ].join('\n'),
  run: async ({ get, print }) => {
    const appliance = await loadAppliance(resolve(readString(get, 'appliance') || defaultAppliance()));
    const resources = chooseResources(appliance, readResourceOverrides(get));
    const kvmDevice = readString(get, 'kvm-device');
    const report = await runPreflight(localPreflightOptions({ appliance, resources, outDir: checkOutputDirectory(readString(get, 'out', 'out'), 'out'), ...(kvmDevice ? { kvmDevice } : {}) }));
    if (get('json') === 'true') print(JSON.stringify(report, null, 2));
    else print(`labforge doctor: ${appliance.name}, profile ${resources.name} (${resources.memoryMiB} MiB VM)\n\n${formatPreflightTable(report)}${report.ok ? '\nReady: labforge pipeline can run here.' : ''}`);
    return report.ok ? 0 : 1;
  },
};
