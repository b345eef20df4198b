import type { Command } from '../command.js';
import { packOva, readPackOvaOptions } from '../../actions/lib/ova-pack.js';

export const packOvaCommand: Command = {
  name: 'pack-ova',
  summary: 'Pack a qcow2 image into an OVA (OVF + manifest + streamOptimized VMDK) and its .ova.sha256; prints JSON.',
  flags: {
    image: { type: 'string', description: 'the disk image to pack (qcow2, raw, …)' },
    appliance: { type: 'string', description: 'appliance directory (holds appliance.yml): the OVF declares its OS and its resource profile, and the OVA carries its name' },
    out: { type: 'string', description: 'the OVA to write', default: '<appliance>-<build-type>-<version>.ova' },
    'build-type': { type: 'string', description: 'standard or prewarmed (OVF property buildType)', default: 'standard' },
    version: { type: 'string', description: 'semantic version of the appliance (OVF property version)' },
    profile: { type: 'string', description: "the appliance's resource profile the OVF declares (needs --appliance)", default: "the manifest's default profile" },
    cpus: { type: 'string', description: 'virtual CPUs of the imported VM', default: "the profile's, or 4 without --appliance" },
    'memory-mib': { type: 'string', description: 'memory of the imported VM in MiB', default: "the profile's, or 8192 without --appliance" },
    'git-sha': { type: 'string', description: 'commit recorded as OVF property gitSha', default: '$GITHUB_SHA or git rev-parse HEAD' },
    'keep-intermediates': { type: 'boolean', description: 'keep the work directory (VMDK template, descriptor, manifest)' },
  },
  details: [
    'Example: labforge pack-ova --appliance packer/hedgehog-lab --image output/hedgehog-lab.qcow2 --build-type standard --version 1.4.0',
    'Without --appliance the OVA is named hedgehog-lab and its OVF declares a generic 64-bit Linux with the --cpus/--memory-mib given.',
    'Exit codes: 0 packed, 1 packing failed, 2 bad input.',
  ].join('\n'),
  run: async ({ get, log, print }) => {
    const options = await readPackOvaOptions(get);
    if (get('appliance').trim() === '') log(`note: no --appliance: the OVF declares ${options.os.description} with ${options.cpus} vCPU(s) and ${options.memoryMiB} MiB`);
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const result = await packOva({ ...options, log, signal: controller.signal });
      print(JSON.stringify(result, null, 2));
      return 0;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};
