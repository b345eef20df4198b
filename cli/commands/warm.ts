import type { Command, FlagSpec } from '../command.js';
import { InputError, inputsFrom } from '../../actions/lib/inputs.js';
import { readApplianceWarmOptions, warmImage, WarmError } from '../../actions/lib/vlab-warm.js';
import { keyFileModeWarning, PASSPHRASE_ENV } from '../../actions/lib/ssh-key-check.js';
import { REGISTRY_CREDENTIAL_ENV } from '../../actions/lib/registry-credential.js';

/** The vlab-warm action's inputs, as flags with the same names. */
export const warmFlags: Record<string, FlagSpec> = {
  appliance: { type: 'string', description: "appliance directory with appliance.yml: empty flags take the manifest's values" },
  profile: { type: 'string', description: "the appliance's resource profile", default: 'the manifest default' },
  image: { type: 'string', description: 'standard qcow2 image to warm (never modified: the warm runs on an overlay)' },
  output: { type: 'string', description: 'where to write the pre-warmed qcow2' },
  attach: { type: 'string', description: 'HOST:PORT of a running machine to warm instead of booting image (no boot, shutdown or flatten)' },
  host: { type: 'string', description: 'attach mode: host of the running machine' },
  port: { type: 'string', description: 'attach mode: SSH port of the running machine' },
  accelerator: { type: 'string', description: 'kvm or tcg', default: 'kvm' },
  memory: { type: 'string', description: 'guest memory in MiB', default: '4096' },
  cpus: { type: 'string', description: 'virtual CPUs', default: '2' },
  nested: { type: 'string', description: 'expose virtualization to the guest (-cpu host; kvm only)', default: 'true with kvm' },
  'ssh-user': { type: 'string', description: 'guest user with passwordless sudo', default: 'lab' },
  'ssh-key-path': { type: 'string', description: 'private key file for ssh-user' },
  'ssh-key': { type: 'string', description: 'private key text (prefer --ssh-key-path: argv is visible to other users)' },
  passphrase: { type: 'string', description: `refused: an encrypted key's passphrase comes from the ${PASSPHRASE_ENV} environment variable (argv is visible to other users)` },
  'registry-credential': { type: 'string', description: `refused: the registry credential (USER:TOKEN) comes from the ${REGISTRY_CREDENTIAL_ENV} environment variable (argv is visible to other users)` },
  'expected-host-key': { type: 'string', description: "attach mode: the host key's SHA256 fingerprint (required for a host that is not loopback)" },
  'cloud-init-seed': { type: 'string', description: 'boot mode, images with cloud-init: attach a NoCloud seed authorizing a per-run key (or the given one) for ssh-user', default: 'false' },
  'init-command': { type: 'string', description: 'build-time lab initialization', default: 'sudo -n /usr/local/sbin/hedgehog-lab build-init --lock-timeout <init-timeout>' },
  'ready-command': { type: 'string', description: 'readiness probe (exit 0 = ready)', default: 'sudo -n /usr/local/sbin/hedgehog-lab ready --wait <ready-timeout>' },
  'status-command': { type: 'string', description: "lab status JSON recorded in the warm manifest ('' for none)", default: 'sudo -n /usr/local/sbin/hedgehog-lab status --json' },
  'seal-command': { type: 'string', description: 'clone hygiene before shutdown', default: 'sudo -n /usr/local/sbin/hedgehog-lab-seal --remove-authorized-keys <ssh-user>' },
  seal: { type: 'string', description: 'run the seal command', default: 'true' },
  'init-timeout-minutes': { type: 'string', description: 'limit for the init command', default: '90' },
  'ready-timeout-minutes': { type: 'string', description: 'limit for the readiness probe', default: '30' },
  'ssh-timeout-minutes': { type: 'string', description: 'limit for SSH to come up', default: '10' },
  'shutdown-timeout-seconds': { type: 'string', description: 'wait for power-off before killing QEMU', default: '180' },
  'marker-path': { type: 'string', description: 'build-type marker in the guest', default: '/etc/hedgehog-lab/build-type' },
  'manifest-path': { type: 'string', description: 'warm manifest in the guest', default: '/var/lib/hedgehog-lab/warm-manifest.json' },
  'qemu-args': { type: 'string', description: 'extra QEMU arguments: a JSON array, or words separated by spaces' },
  sbom: { type: 'string', description: "where to write the warmed image's SBOM (CycloneDX JSON; none for none)", default: '<output without .qcow2>.cdx.json' },
  version: { type: 'string', description: 'lab version recorded in the warm manifest', default: '0.0.0-dev' },
};

/** Splits `--attach HOST:PORT` into the host and port inputs. */
function withAttach(get: (name: string) => string): (name: string) => string {
  const attach = get('attach');
  if (attach === '') return get;
  const m = /^(.+):(\d+)$/.exec(attach);
  if (!m) throw new InputError('attach', `'${attach}' is not HOST:PORT`, 'give the SSH address of the running machine, e.g. 127.0.0.1:2222');
  if (get('host') !== '' || get('port') !== '') throw new InputError('attach', 'is given together with --host/--port', 'use one of them');
  return inputsFrom({ ...Object.fromEntries(Object.keys(warmFlags).map((k) => [k, get(k)])), host: m[1], port: m[2] });
}

export const warmCommand: Command = {
  name: 'vlab-warm',
  aliases: ['warm'],
  summary: 'Turn a standard image into a pre-warmed one (boot, init the lab, prove readiness, mark, seal, shut down, flatten).',
  flags: warmFlags,
  details: [
    'Examples:',
    '  labforge warm --image standard.qcow2 --output prewarmed.qcow2 --accelerator tcg --nested false',
    '  labforge warm --image standard.qcow2 --output prewarmed.qcow2 --ssh-user labforge --cloud-init-seed true   # the sealed real appliance',
    '  labforge warm --attach 127.0.0.1:2222 --ssh-key-path build_key   # from a Packer shell-local provisioner',
    'Prints the result as JSON on stdout (image, sbom, warm-seconds, timeline); progress on stderr.',
    `An encrypted key's passphrase: the ${PASSPHRASE_ENV} environment variable (never a flag value).`,
    `A registry credential for the lab's downloads (USER:TOKEN): the ${REGISTRY_CREDENTIAL_ENV} environment variable (never a flag value); written into the guest over SSH stdin and removed once the lab is ready.`,
    'Exit codes: 0 warmed, 1 the warm failed (nothing left running), 2 bad input.',
  ].join('\n'),
  run: async ({ get: flags, log, print }) => {
    if (flags('passphrase') !== '') throw new InputError('passphrase', 'must not be given on the command line (every user can read argv with ps)', `set the ${PASSPHRASE_ENV} environment variable instead`);
    if (flags('registry-credential') !== '') throw new InputError('registry-credential', 'must not be given on the command line (every user can read argv with ps)', `set the ${REGISTRY_CREDENTIAL_ENV} environment variable instead`);
    const fromEnv: Record<string, string> = { passphrase: process.env[PASSPHRASE_ENV] ?? '', 'registry-credential': process.env[REGISTRY_CREDENTIAL_ENV] ?? '' };
    const get = (name: string): string => (Object.hasOwn(fromEnv, name) ? fromEnv[name]! : flags(name));
    const options = await readApplianceWarmOptions(withAttach(get));
    const modeWarning = keyFileModeWarning(options.sshKeyPath);
    if (modeWarning) log(modeWarning);
    const controller = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      log(`labforge warm: ${sig} received, stopping QEMU and removing the overlay`);
      controller.abort(new Error(`cancelled by ${sig}`));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const result = await warmImage(options, { log, signal: controller.signal });
      print(JSON.stringify({ image: result.image ?? '', sbom: result.sbom?.path ?? '', 'warm-seconds': result.warmSeconds, timeline: result.timeline, serialLog: result.serialLog ?? '' }, null, 2));
      return 0;
    } catch (e) {
      if (e instanceof WarmError) {
        log(`labforge warm: ${e.message}`);
        return 1;
      }
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
