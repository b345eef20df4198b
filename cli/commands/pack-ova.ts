import type { Command } from '../command.js';
import { packOva, readPackOvaOptions } from '../../actions/lib/ova-pack.js';
import { untilTerminated } from '../../actions/lib/termination.js';

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
    'keep-intermediates': { type: 'boolean', description: 'keep the work directory (descriptor, manifest; with --vmdk-writer qemu-img also the VMDK template)' },
    'vmdk-writer': { type: 'string', description: "who writes the VMDK: stream (labforge's writer, grains compressed on every core) or qemu-img (qemu-img convert, one core)", default: 'stream' },
    'pack-threads': { type: 'string', description: 'compression threads of the stream writer', default: 'the CPUs available' },
    'manifest-position': { type: 'string', description: 'where the manifest goes in the OVA: second (OVF, MF, VMDK) or end (OVF, VMDK, MF; OVF 1.1+)', default: 'second' },
  },
  details: [
    'Example: labforge pack-ova --appliance packer/hedgehog-lab --image output/hedgehog-lab.qcow2 --build-type standard --version 1.4.0',
    'Without --appliance the OVA is named hedgehog-lab and its OVF declares a generic 64-bit Linux with the --cpus/--memory-mib given.',
    'SIGINT/SIGTERM stop the packing (every compression thread, or qemu-img) and remove the partial OVA.',
    'Exit codes: 0 packed, 1 packing failed, 2 bad input.',
  ].join('\n'),
  run: async ({ get, log, print }) => {
    const options = await readPackOvaOptions(get);
    if (get('appliance').trim() === '') log(`note: no --appliance: the OVF declares ${options.os.description} with ${options.cpus} vCPU(s) and ${options.memoryMiB} MiB`);
    const result = await untilTerminated((signal) => packOva({ ...options, log, signal }));
    print(JSON.stringify(result, null, 2));
    return 0;
  },
};
