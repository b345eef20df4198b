/**
 * vlab-warm's inputs: the action's (and `labforge warm`'s) names read and checked before anything boots, and
 * an appliance manifest's values for the inputs left empty. The warm itself is in vlab-warm.ts.
 */
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { checkPrivateKey, FINGERPRINT, isLoopbackHost } from './ssh-key-check.js';
import { InputError, checkInputFile, checkOutputFile, checkVersion, inputsFrom, readBool, readInt, readName, readString, type InputGetter } from './inputs.js';
import { printable } from './escape.js';
import type { Accelerator } from './qemu-vm.js';
import { readAccelerator } from './preflight.js';
import { readRegistryCredential } from './registry-credential.js';
import { checkPrivateKeyFile, USER_NAME } from './packer-build-inputs.js';
import { checkDiskImage, readImageInfo } from './ova-pack.js';
import { checkAccelerator, chooseResources, loadAppliance, readResourceOverrides, type Appliance, type ResourceChoice } from './appliance.js';

/** Where the guest orchestrator and its seal helper are installed (packer/guest/install.sh). */
export const ORCHESTRATOR = '/usr/local/sbin/hedgehog-lab';
export const SEAL_HELPER = '/usr/local/sbin/hedgehog-lab-seal';
export const DEFAULT_MARKER_PATH = '/etc/hedgehog-lab/build-type';
export const DEFAULT_MANIFEST_PATH = '/var/lib/hedgehog-lab/warm-manifest.json';

export interface WarmOptions {
  /** Boot mode: the standard qcow2 image (read only: the warm runs on an overlay). */
  image?: string;
  /** Boot mode: where the pre-warmed qcow2 is written. */
  output?: string;
  /** Attach mode: an already running machine. */
  attach?: { host: string; port: number };
  accelerator: Accelerator;
  memoryMiB: number;
  cpus: number;
  /** Expose virtualization to the guest (`-cpu host`): the lab runs its own VMs. Needs KVM. */
  nested: boolean;
  sshUser: string;
  /**
   * The private key text (from ssh-key or ssh-key-path). Never logged. Empty with `cloudInitSeed` and no
   * key given: the seed step generates one.
   */
  sshKey: string;
  /** Passphrase of an encrypted sshKey (the passphrase input; the CLI reads LABFORGE_SSH_PASSPHRASE). Never logged. */
  sshPassphrase?: string;
  /** The SHA256 fingerprint the host key must have (expected-host-key; required to attach to a non-loopback host). */
  expectedHostKey?: string;
  /** ssh-key-path, when the key came from a file (for the permission warning). */
  sshKeyPath?: string;
  /**
   * Boot mode: attach a NoCloud seed that authorizes the key (a per-run ed25519 key when sshKey is empty)
   * for sshUser with passwordless sudo. For images with cloud-init whose seal removed the build key.
   */
  cloudInitSeed?: boolean;
  /** Runs the lab's build-time initialization. */
  initCommand: string;
  /** Proves readiness: exit 0 = ready. */
  readyCommand: string;
  /** Prints the lab's status JSON for the manifest (best effort; '' = none). */
  statusCommand: string;
  /** Clone hygiene before shutdown (when `seal`). */
  sealCommand: string;
  seal: boolean;
  initTimeoutMinutes: number;
  readyTimeoutMinutes: number;
  sshTimeoutMinutes: number;
  shutdownTimeoutSeconds: number;
  markerPath: string;
  manifestPath: string;
  /** Extra QEMU arguments (e.g. direct kernel boot). */
  qemuArgs: string[];
  /** The lab (appliance) version recorded in the warm manifest. */
  version: string;
  /**
   * The `registry-credential` input (USER:TOKEN; the CLI reads LABFORGE_REGISTRY_CREDENTIAL): written into the
   * guest over SSH stdin as docker's config for the lab's downloads during init and readiness, then removed.
   * Never logged.
   */
  registryCredential?: string;
  /** The guest directory of that docker config (the driver's DOCKER_CONFIG; default /run/hedgehog-lab/registry). */
  registryConfigDir?: string;
  /** Where the SBOM of the warmed image goes (made after the seal from its package inventory), and whose it is. */
  sbom?: { out: string; appliance: string };
}

/**
 * Splits the qemu-args input: a JSON array of strings, or words separated by white space (an argument that
 * contains spaces needs the JSON form).
 */
export function parseQemuArgs(raw: string): string[] {
  const v = raw.trim();
  if (v === '') return [];
  if (v.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch (e) {
      throw new InputError('qemu-args', `is not a valid JSON array (${(e as Error).message})`, 'give a JSON array of strings, or words separated by spaces');
    }
    if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
      throw new InputError('qemu-args', 'must be an array of strings', 'give a JSON array of strings such as ["-kernel","/path/vmlinuz"]');
    }
    return parsed;
  }
  return v.split(/\s+/);
}

function readKey(get: InputGetter, seed: boolean): string {
  const inline = get('ssh-key');
  const path = readString(get, 'ssh-key-path');
  if (inline.trim() !== '' && path !== '') throw new InputError('ssh-key', 'both ssh-key and ssh-key-path are set', 'give only one of them');
  if (seed && inline.trim() === '' && path === '') return '';
  if (inline.trim() !== '') {
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(inline)) throw new InputError('ssh-key', 'does not look like a private key (no BEGIN … PRIVATE KEY line)', 'pass the private key text, e.g. from a secret');
    return inline.trim() + '\n';
  }
  if (path === '') throw new InputError('ssh-key-path', 'no SSH key given', 'set ssh-key (the private key text) or ssh-key-path (a key file), or cloud-init-seed: true for an image with cloud-init');
  // A device or a FIFO is never read (a read of /dev/zero or a FIFO would never end).
  checkPrivateKeyFile(path, 'ssh-key-path');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError('ssh-key-path', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of the private key file');
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new InputError('ssh-key-path', `${path} is not a private key file`, 'give the private key, not the .pub file');
  return text;
}

/** Reads a `*-command` input: a shell command that may span lines, but holds no other control character. */
function readCommand(get: InputGetter, name: string, fallback: string): string {
  const v = readString(get, name, fallback);
  // eslint-disable-next-line no-control-regex
  const bad = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/.exec(v);
  if (bad) throw new InputError(name, `'${printable(v, 80)}' contains the control character ${printable(bad[0])}`, 'give a shell command of printable text (TAB and line breaks are allowed)');
  return v;
}

function readAbsPath(get: InputGetter, name: string, fallback: string): string {
  const v = readString(get, name, fallback);
  if (!v.startsWith('/')) throw new InputError(name, `'${v}' is not an absolute path in the guest`, `give an absolute path such as ${fallback}`);
  return v;
}

/**
 * The `output` of a warm, checked before anything boots: not an existing directory, in a directory that
 * exists and that this user can write to (the overlay and the serial log are written beside it).
 */
export function checkWarmOutput(output: string): void {
  const path = resolve(output);
  const parent = dirname(path);
  if (existsSync(path) && statSync(path).isDirectory()) throw new InputError('output', `${printable(output, 200)} is a directory, expected a file`, 'give the path of the pre-warmed qcow2 file to write, e.g. output/prewarmed.qcow2');
  checkOutputFile(path, 'output');
  if (!existsSync(parent)) throw new InputError('output', `directory ${printable(parent, 200)} does not exist`, 'create it first');
  try {
    accessSync(parent, fsConstants.W_OK | fsConstants.X_OK);
  } catch {
    throw new InputError('output', `directory ${parent} is not writable`, 'choose a directory this user can write to, or fix its permissions');
  }
}

/** Reads and validates the vlab-warm inputs (the action's and `labforge warm`'s names). */
export function readWarmOptions(get: InputGetter): WarmOptions {
  const image = readString(get, 'image');
  const host = readName(get, 'host', '', 'a host name or an IP address');
  const portRaw = readString(get, 'port');
  let attach: WarmOptions['attach'];
  let output: string | undefined;
  if (host !== '' || portRaw !== '') {
    if (image !== '') throw new InputError('image', 'image and host/port are both set', 'give image (boot a standard image) or host and port (attach to a running machine), not both');
    if (host === '') throw new InputError('host', 'port is set but host is empty', 'give the host of the running machine, e.g. 127.0.0.1');
    const port = readInt(get, 'port', 0, { min: 1, max: 65535 });
    if (port === 0) throw new InputError('port', 'host is set but port is empty', 'give the SSH port of the running machine');
    if (readString(get, 'output') !== '') throw new InputError('output', 'attach mode writes no image', 'leave output empty with host/port; the machine that runs the guest makes the image');
    if (!isLoopbackHost(host) && readString(get, 'expected-host-key') === '') {
      throw new InputError('expected-host-key', `is required to attach to ${printable(host, 100)}, which is not this machine (loopback)`, "give the host key's fingerprint as 'ssh-keygen -lf KEY.pub' prints it (SHA256:…)");
    }
    attach = { host, port };
    if (readBool(get, 'cloud-init-seed', false)) {
      throw new InputError('cloud-init-seed', 'cannot be used in attach mode (host/port): the seed is a disk attached when vlab-warm boots the image', 'attach the seed where the machine is started (Packer: cd_files with cd_label cidata), or give image instead of host/port');
    }
  } else {
    if (image === '') throw new InputError('image', 'is required', 'give the standard qcow2 image to warm (or host and port to attach to a running machine)');
    checkInputFile(image, 'image', { nonEmpty: true, what: 'the standard qcow2 image' });
    output = readString(get, 'output');
    if (output === '') throw new InputError('output', 'is required', 'give the path of the pre-warmed qcow2 to write');
    if (resolve(output) === resolve(image)) throw new InputError('output', 'is the same file as image', 'write the pre-warmed image to a new path: the standard image is never modified');
    checkWarmOutput(output);
  }
  const accelerator = readAccelerator(get);
  const nested = readBool(get, 'nested', accelerator === 'kvm');
  if (nested && accelerator === 'tcg' && !attach) throw new InputError('nested', 'needs accelerator kvm (-cpu host is not available under TCG)', 'set nested to false, or use a KVM runner');
  const readyTimeoutMinutes = readInt(get, 'ready-timeout-minutes', 30, { min: 1, max: 24 * 60 });
  const initTimeoutMinutes = readInt(get, 'init-timeout-minutes', 90, { min: 1, max: 24 * 60 });
  const sshUser = readName(get, 'ssh-user', 'lab', 'the user name');
  if (!USER_NAME.test(sshUser)) throw new InputError('ssh-user', `'${printable(sshUser, 80)}' is not a user name`, 'give the guest user that SSH logs in as');
  const versionRaw = readString(get, 'version');
  const cloudInitSeed = attach ? false : readBool(get, 'cloud-init-seed', false);
  const readySeconds = readyTimeoutMinutes * 60;
  const expectedHostKey = readString(get, 'expected-host-key');
  if (expectedHostKey !== '' && !FINGERPRINT.test(expectedHostKey)) {
    throw new InputError('expected-host-key', `'${printable(expectedHostKey, 80)}' is not a SHA256 fingerprint`, "give it as 'ssh-keygen -lf KEY.pub' prints it: SHA256: followed by 43 base64 characters");
  }
  const sshPassphrase = get('passphrase');
  const sshKey = readKey(get, cloudInitSeed);
  const sshKeyPath = readString(get, 'ssh-key-path');
  if (sshKey !== '') checkPrivateKey(sshKey, sshPassphrase === '' ? undefined : sshPassphrase, sshKeyPath !== '' ? 'ssh-key-path' : 'ssh-key');
  else if (sshPassphrase !== '') throw new InputError('passphrase', 'is set but no key is given', 'give ssh-key or ssh-key-path with it, or leave passphrase empty');
  const registryCredential = readRegistryCredential(get);
  // The SBOM: beside the pre-warmed image by default (<base>.qcow2 → <base>.cdx.json); 'none' for none.
  const sbomRaw = readString(get, 'sbom');
  if (sbomRaw !== '' && sbomRaw !== 'none' && !sbomRaw.endsWith('.cdx.json')) throw new InputError('sbom', `'${printable(sbomRaw, 200)}' does not end in .cdx.json`, 'give the path of the CycloneDX JSON SBOM to write (<appliance>-prewarmed-<version>.cdx.json), or none');
  const sbomOut = sbomRaw === 'none' ? '' : sbomRaw || (output ? `${output.replace(/\.qcow2$/, '')}.cdx.json` : '');
  if (sbomRaw.endsWith('.cdx.json') && !existsSync(dirname(resolve(sbomRaw)))) throw new InputError('sbom', `directory ${printable(dirname(resolve(sbomRaw)), 200)} does not exist`, 'create it first, or leave sbom empty (beside the pre-warmed image)');
  return {
    ...(sbomOut !== '' ? { sbom: { out: resolve(sbomOut), appliance: 'hedgehog-lab' } } : {}),
    ...(image !== '' ? { image } : {}),
    ...(output ? { output } : {}),
    ...(attach ? { attach } : {}),
    accelerator,
    memoryMiB: readInt(get, 'memory', 4096, { min: 256, max: 1024 * 1024 }),
    cpus: readInt(get, 'cpus', 2, { min: 1, max: 256 }),
    nested,
    sshUser,
    sshKey,
    ...(sshPassphrase !== '' ? { sshPassphrase } : {}),
    ...(expectedHostKey !== '' ? { expectedHostKey } : {}),
    ...(sshKeyPath !== '' ? { sshKeyPath } : {}),
    ...(registryCredential !== '' ? { registryCredential } : {}),
    cloudInitSeed,
    // The boot service may be initializing the lab already (a standard image's first boot): wait for its
    // lock instead of failing; build-init then only resumes and proves readiness.
    initCommand: readCommand(get, 'init-command', `sudo -n ${ORCHESTRATOR} build-init --lock-timeout ${initTimeoutMinutes * 60}`),
    readyCommand: readCommand(get, 'ready-command', `sudo -n ${ORCHESTRATOR} ready --wait ${readySeconds}`),
    statusCommand: readCommand(get, 'status-command', `sudo -n ${ORCHESTRATOR} status --json`),
    sealCommand: readCommand(get, 'seal-command', `sudo -n ${SEAL_HELPER} --remove-authorized-keys ${sshUser}`),
    seal: readBool(get, 'seal', true),
    initTimeoutMinutes,
    readyTimeoutMinutes,
    sshTimeoutMinutes: readInt(get, 'ssh-timeout-minutes', 10, { min: 1, max: 240 }),
    shutdownTimeoutSeconds: readInt(get, 'shutdown-timeout-seconds', 180, { min: 5, max: 3600 }),
    markerPath: readAbsPath(get, 'marker-path', DEFAULT_MARKER_PATH),
    manifestPath: readAbsPath(get, 'manifest-path', DEFAULT_MANIFEST_PATH),
    qemuArgs: parseQemuArgs(get('qemu-args')),
    version: versionRaw === '' ? '0.0.0-dev' : checkVersion(versionRaw, 'version'),
  };
}

/**
 * Boot mode: the image must be what `qemu-img info` calls a disk image of non-zero size (as pack-ova checks
 * it), before QEMU boots; a text file is refused naming `image`.
 */
async function checkWarmImage(options: WarmOptions): Promise<WarmOptions> {
  if (!options.image) return options;
  const info = await readImageInfo(options.image).catch((e: Error) => {
    throw new InputError('image', `${printable(options.image!, 200)} is not a disk image qemu-img can read (${printable(e.message, 300)})`, 'give the standard qcow2 image to warm');
  });
  checkDiskImage(printable(options.image, 200), info, statSync(options.image).size);
  return options;
}

/**
 * The warm inputs of an appliance build: with an `appliance` input (a directory with appliance.yml), every
 * input left empty takes the manifest's value — the profile's CPUs, memory and nested virtualization, the
 * build user logging in through a fresh cloud-init seed, the lab's init/ready/status/seal commands and the
 * warm timeouts — so the warm VM is the VM the manifest describes. Without it, as {@link readWarmOptions}.
 */
export async function readApplianceWarmOptions(get: InputGetter): Promise<WarmOptions & { appliance?: Appliance; resources?: ResourceChoice }> {
  const dir = readString(get, 'appliance');
  if (dir === '') {
    if (readString(get, 'profile') !== '') throw new InputError('profile', 'needs an appliance (resource profiles are declared in appliance.yml)', 'give appliance (e.g. packer/hedgehog-lab), or leave profile empty');
    return checkWarmImage(readWarmOptions(get));
  }
  const appliance = await loadAppliance(dir);
  const resources = chooseResources(appliance, readResourceOverrides(inputsFrom({ profile: get('profile'), cpus: get('cpus'), 'memory-mib': get('memory') })));
  const c = appliance.lab.commands;
  const fallback: Record<string, string> = {
    memory: String(resources.memoryMiB),
    cpus: String(resources.cpus),
    'ssh-user': appliance.build.user,
    'cloud-init-seed': 'true',
    'init-command': c.init,
    'ready-command': c.ready,
    'status-command': c.status,
    'seal-command': c.seal,
    'init-timeout-minutes': String(appliance.warm.initTimeoutMinutes),
    'ready-timeout-minutes': String(appliance.warm.readyTimeoutMinutes),
    'ssh-timeout-minutes': String(appliance.warm.sshTimeoutMinutes),
    'shutdown-timeout-seconds': String(appliance.warm.shutdownTimeoutSeconds),
  };
  const accelerator = readAccelerator(get);
  checkAccelerator(appliance, accelerator, 'warm');
  fallback.accelerator = accelerator;
  // Nested virtualization when the profile needs it, and only where KVM can give it.
  if (get('nested').trim() === '') fallback.nested = String(resources.nestedVirtualization && accelerator === 'kvm');
  const withManifest: InputGetter = (name) => {
    const v = get(name);
    return v.trim() !== '' ? v : (fallback[name] ?? '');
  };
  const options = await checkWarmImage(readWarmOptions(withManifest));
  return { ...options, ...(options.sbom ? { sbom: { ...options.sbom, appliance: appliance.name } } : {}), appliance, resources };
}
