import type { Command } from '../command.js';
import { buildOutputs, readPackerBuildOptions, runPackerBuild, terminalReporter } from '../../actions/lib/packer-build.js';

export const buildCommand: Command = {
  name: 'build',
  summary: 'Preflight, packer init/validate/build (streamed, with an SSH watchdog) and pack the OVA; prints JSON outputs.',
  flags: {
    template: { type: 'string', description: 'Packer template file or directory' },
    'build-type': { type: 'string', description: 'standard or prewarmed', default: 'standard' },
    version: { type: 'string', description: 'semantic version of the appliance' },
    vars: { type: 'string', multiple: true, description: 'key=value for -var (repeatable)' },
    'var-files': { type: 'string', multiple: true, description: '-var-file (repeatable)' },
    only: { type: 'string', description: 'comma-separated builds for -only' },
    accelerator: { type: 'string', description: 'kvm, or tcg when asked for explicitly', default: 'kvm' },
    'timeout-minutes': { type: 'string', description: 'stop the build after this long', default: '120' },
    'on-error': { type: 'string', description: 'cleanup or abort (packer -on-error)', default: 'cleanup' },
    'cache-dir': { type: 'string', description: 'persistent PACKER_CACHE_DIR (ISOs)' },
    package: { type: 'string', description: 'ova or none', default: 'ova' },
    'output-dir': { type: 'string', description: 'where the build log and the OVA go', default: 'labforge-output' },
    'expected-image-gib': { type: 'string', description: 'expected image size for the disk preflight', default: '40' },
    'vm-memory-mib': { type: 'string', description: 'build VM memory for the memory preflight', default: '4096' },
    'ssh-watchdog-seconds': { type: 'string', description: 'diagnose SSH after Packer waited this long (0: off)', default: '300' },
    'ssh-username': { type: 'string', description: 'user Packer logs in as (for the watchdog)', default: 'packer' },
    'ssh-private-key-file': { type: 'string', description: 'key Packer uses (for the watchdog)' },
    'plugin-cache': { type: 'string', description: 'use PACKER_PLUGIN_PATH ~/.cache/labforge/packer-plugins', default: 'true' },
    'keep-intermediates': { type: 'boolean', description: 'keep the OVA work directory' },
  },
  details: 'The GitHub token for packer init is read from $PACKER_GITHUB_API_TOKEN, never from a flag.\nExit codes: 0 built, 1 the build failed, 2 bad input.',
  run: async ({ get, log, print }) => {
    const options = readPackerBuildOptions(get);
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const result = await runPackerBuild(options, { reporter: terminalReporter(log), signal: controller.signal });
      print(JSON.stringify({ ...buildOutputs(result), phases: result.phases, notes: result.notes }, null, 2));
      return 0;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};
