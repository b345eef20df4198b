import type { Command } from '../command.js';
import { packOva, readPackOvaOptions } from '../../actions/lib/ova-pack.js';

export const packOvaCommand: Command = {
  name: 'pack-ova',
  summary: 'Pack a qcow2 image into an OVA (OVF + manifest + streamOptimized VMDK) and its .ova.sha256; prints JSON.',
  flags: {
    image: { type: 'string', description: 'the disk image to pack (qcow2, raw, …)' },
    out: { type: 'string', description: 'the OVA to write', default: 'hedgehog-lab-<build-type>-<version>.ova' },
    'build-type': { type: 'string', description: 'standard or prewarmed (OVF property buildType)', default: 'standard' },
    version: { type: 'string', description: 'semantic version of the appliance (OVF property version)' },
    cpus: { type: 'string', description: 'virtual CPUs of the imported VM', default: '4' },
    'memory-mib': { type: 'string', description: 'memory of the imported VM in MiB', default: '8192' },
    'git-sha': { type: 'string', description: 'commit recorded as OVF property gitSha', default: '$GITHUB_SHA or git rev-parse HEAD' },
    'keep-intermediates': { type: 'boolean', description: 'keep the work directory (VMDK template, descriptor, manifest)' },
  },
  details: 'Example: labforge pack-ova --image output/hedgehog-lab.qcow2 --build-type standard --version 1.4.0\nExit codes: 0 packed, 1 packing failed, 2 bad input.',
  run: async ({ get, log, print }) => {
    const options = readPackOvaOptions(get);
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
