import type { Command } from '../command.js';
import { readPreflightOptions, runPreflight } from '../../actions/lib/preflight.js';

export const preflightCommand: Command = {
  name: 'preflight',
  summary: 'Check this machine for a Packer build: KVM, packer, qemu, free disk, memory; prints JSON verdicts (labforge doctor: the whole local pipeline).',
  flags: {
    accelerator: { type: 'string', description: 'kvm, tcg (needs no /dev/kvm) or auto (KVM when usable here, else TCG)', default: 'kvm' },
    'kvm-device': { type: 'string', description: 'the KVM device', default: '/dev/kvm' },
    'output-dir': { type: 'string', description: 'where the image and the OVA will be written', default: '.' },
    'expected-image-gib': { type: 'string', description: 'expected size of the built image; twice that must be free', default: '40' },
    'vm-memory-mib': { type: 'string', description: 'memory of the build VM', default: '4096' },
  },
  details: 'Exit codes: 0 every check passed, 1 a check failed (each failure is printed with its fix), 2 bad input.',
  run: async ({ get, log, print }) => {
    const report = await runPreflight(readPreflightOptions(get));
    for (const v of report.verdicts) log(`${v.ok ? 'ok  ' : 'FAIL'} ${v.check}: ${v.detail}${v.fix && !v.ok ? ` (fix: ${v.fix})` : ''}`);
    if (report.aptInstall) log(`install what is missing, as root: ${report.aptInstall}`);
    print(JSON.stringify(report, null, 2));
    return report.ok ? 0 : 1;
  },
};
