import type { Command } from '../command.js';
import { buildOutputs, readPackerBuildOptions, runPackerBuild, terminalReporter } from '../../actions/lib/packer-build.js';
import { REGISTRY_CREDENTIAL_ENV } from '../../actions/lib/registry-credential.js';

export const buildCommand: Command = {
  name: 'packer-build',
  aliases: ['build'],
  summary: 'Preflight, packer init/validate/build (streamed, with an SSH watchdog) and pack the OVA; prints JSON outputs.',
  flags: {
    appliance: { type: 'string', description: 'appliance directory with appliance.yml (e.g. packer/demo-lab); names the template' },
    template: { type: 'string', description: 'a plain Packer template file or directory (instead of an appliance)' },
    profile: { type: 'string', description: "the appliance's resource profile", default: 'the manifest default' },
    cpus: { type: 'string', description: "vCPUs (overrides the profile's)" },
    'memory-mib': { type: 'string', description: "memory in MiB (overrides the profile's)" },
    'disk-gib': { type: 'string', description: "disk in GiB (overrides the profile's)" },
    'validate-only': { type: 'boolean', description: 'stop after packer validate, with exactly the variables a build gets' },
    'build-type': { type: 'string', description: 'standard or prewarmed', default: 'standard' },
    version: { type: 'string', description: 'semantic version of the appliance' },
    vars: { type: 'string', multiple: true, description: 'key=value for -var (repeatable)' },
    'var-files': { type: 'string', multiple: true, description: '-var-file (repeatable)' },
    only: { type: 'string', description: 'comma-separated builds for -only' },
    accelerator: { type: 'string', description: 'kvm, or tcg when asked for explicitly', default: 'kvm' },
    'timeout-minutes': { type: 'string', description: 'stop the build after this long', default: '120' },
    'on-error': { type: 'string', description: 'cleanup or abort (packer -on-error)', default: 'cleanup' },
    'cache-dir': { type: 'string', description: "PACKER_CACHE_DIR (ISOs), or 'temporary'", default: '$PACKER_CACHE_DIR or ~/.cache/labforge/packer' },
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
  details:
    'Secrets are read from the environment, never from flags: $PACKER_GITHUB_API_TOKEN (packer init) and\n$LABFORGE_CONSOLE_PASSWORD (the appliance login user\'s console password; only its hash reaches the image) and\n$LABFORGE_REGISTRY_CREDENTIAL (USER:TOKEN for the lab\'s registry; given to Packer as PKR_VAR_registry_auth, which may also be set directly).\nExample: labforge build --appliance packer/hedgehog-lab --version 1.0.0 --validate-only\nExit codes: 0 built, 1 the build failed, 2 bad input.',
  run: async ({ get, log, print }) => {
    const secrets: Record<string, string> = { 'console-password': (process.env.LABFORGE_CONSOLE_PASSWORD ?? '').trim(), 'registry-credential': process.env[REGISTRY_CREDENTIAL_ENV] ?? '' };
    const withSecrets = (name: string) => (Object.hasOwn(secrets, name) ? secrets[name]! : get(name));
    const options = readPackerBuildOptions(withSecrets);
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
