/**
 * vlab-warm: turn a standard appliance image into a pre-warmed one.
 *
 * The standard image is never modified: the warm runs on a copy-on-write overlay. QEMU boots the overlay
 * (own process group, serial console to a file, SSH forwarded from a free 127.0.0.1 port); over SSH the
 * guest orchestrator initializes the lab in build-time mode, readiness is proven with a real probe, and only
 * then the marker `prewarmed` and a warm manifest (lab version, timings, readiness evidence) are written.
 * The guest is sealed (clone hygiene), shut down cleanly (poweroff, then kill after a timeout) and the
 * overlay is flattened into the output image.
 *
 * Attach mode warms a machine that something else runs (e.g. a Packer build calling `labforge warm
 * --attach` from a shell-local provisioner): no overlay, boot, shutdown or flatten.
 *
 * A sealed cloud-init image (the real appliance: its seal removed the build user's key) needs
 * `cloud-init-seed`: a per-run key pair and a NoCloud seed ISO that authorizes it (cloud-init-seed.ts),
 * attached to QEMU as a read-only virtio disk and removed afterwards.
 *
 * The warm is a sequence of steps with cleanups (see step-sequence.ts): failure or cancellation anywhere
 * leaves no QEMU, no overlay and no seed behind.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { checkPrivateKey, FINGERPRINT, isLoopbackHost } from './ssh-key-check.js';
import { InputError, checkInputFile, checkOutputFile, checkVersion, inputsFrom, readBool, readInt, readName, readString, type InputGetter } from './inputs.js';
import { logLines, logText, printable } from './escape.js';
import { connectSsh, shellQuote, SshConnectTimeoutError, type ExecResult, type RemoteSession } from './ssh-remote.js';
import { runSteps, StepFailedError, type Step, type StepTiming } from './step-sequence.js';
import { startVm, type Accelerator, type VmHandle } from './qemu-vm.js';
import { diagnoseSsh, formatDiagnosis } from './ssh-diagnose.js';
import { relevantSerialLines } from './serial-log.js';
import { createSeed, removeSeed, seedQemuArgs, SEED_VOLUME_ID, type CloudInitSeed } from './cloud-init-seed.js';
import { toolOutput } from './tool-output.js';
import { readAccelerator } from './preflight.js';
import { buildGitSha, sbomFromGuest, type SbomFile } from './sbom.js';
import { checkAccelerator, chooseResources, loadAppliance, readResourceOverrides, type Appliance, type ResourceChoice } from './appliance.js';

/** Where the guest orchestrator and its seal helper are installed (packer/guest/install.sh). */
export const ORCHESTRATOR = '/usr/local/sbin/hedgehog-lab';
export const SEAL_HELPER = '/usr/local/sbin/hedgehog-lab-seal';
export const DEFAULT_MARKER_PATH = '/etc/hedgehog-lab/build-type';
export const DEFAULT_MANIFEST_PATH = '/var/lib/hedgehog-lab/warm-manifest.json';

export type { Accelerator };

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
  /** Where the SBOM of the warmed image goes (made after the seal from its package inventory), and whose it is. */
  sbom?: { out: string; appliance: string };
}

/** The record written into the guest at `manifestPath` after readiness is proven. */
export interface WarmManifest {
  schema: 1;
  buildType: 'prewarmed';
  labVersion: string;
  warmedAt: string;
  mode: 'boot' | 'attach';
  sourceImage?: string;
  accelerator?: Accelerator;
  /** Seconds per step up to readiness. */
  timings: Record<string, number>;
  init: { command: string; exitCode: number | null; seconds: number };
  readiness: {
    command: string;
    exitCode: number | null;
    seconds: number;
    provedAt: string;
    /** The tail of the probe's output. */
    output: string;
    /** The lab's status JSON (status-command), when it printed JSON. */
    status: unknown;
  };
}

export interface WarmResult {
  /** The pre-warmed image (boot mode). */
  image?: string;
  warmSeconds: number;
  /** Seconds per step: boot, ssh-up, init, ready, mark, seal, shutdown, flatten. */
  timeline: Record<string, number>;
  steps: StepTiming[];
  manifest: WarmManifest;
  serialLog?: string;
  /** The SBOM written after the seal (none when the guest took no package inventory). */
  sbom?: SbomFile;
}

/** What a running warm holds, reported as soon as it exists so that a `post:` step can clean up. */
export interface WarmResources {
  qemuPid?: number;
  overlay?: string;
  serialLog?: string;
  /** The private directory of the cloud-init seed (cloud-init-seed). */
  seedDir?: string;
}

export interface WarmRunOptions {
  /** Receives every progress and remote output line. */
  log?: (line: string) => void;
  signal?: AbortSignal;
  onResources?: (resources: WarmResources) => void;
  /** Called when a step starts (tests use it to cancel mid-init). */
  onStepStart?: (step: string) => void;
  /** Receives secrets made during the run (the generated private key) so that the caller can mask them. */
  onSecret?: (secret: string) => void;
}

/** A warm that failed: which step, why, and the evidence (remote output, diagnosis, serial lines). */
export class WarmError extends Error {
  constructor(
    readonly step: string,
    message: string,
    readonly timeline: StepTiming[],
  ) {
    super(message);
    this.name = 'WarmError';
  }
}

// ------------------------------------------------------------------ inputs --

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
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InputError('ssh-key-path', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of the private key file');
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new InputError('ssh-key-path', `${path} is not a private key file`, 'give the private key, not the .pub file');
  return text;
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
  if (!/^[a-z_][a-z0-9_.-]*$/i.test(sshUser)) throw new InputError('ssh-user', `'${printable(sshUser, 80)}' is not a user name`, 'give the guest user that SSH logs in as');
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
    cloudInitSeed,
    // The boot service may be initializing the lab already (a standard image's first boot): wait for its
    // lock instead of failing; build-init then only resumes and proves readiness.
    initCommand: readString(get, 'init-command', `sudo -n ${ORCHESTRATOR} build-init --lock-timeout ${initTimeoutMinutes * 60}`),
    readyCommand: readString(get, 'ready-command', `sudo -n ${ORCHESTRATOR} ready --wait ${readySeconds}`),
    statusCommand: readString(get, 'status-command', `sudo -n ${ORCHESTRATOR} status --json`),
    sealCommand: readString(get, 'seal-command', `sudo -n ${SEAL_HELPER} --remove-authorized-keys ${sshUser}`),
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
 * The warm inputs of an appliance build: with an `appliance` input (a directory with appliance.yml), every
 * input left empty takes the manifest's value — the profile's CPUs, memory and nested virtualization, the
 * build user logging in through a fresh cloud-init seed, the lab's init/ready/status/seal commands and the
 * warm timeouts — so the warm VM is the VM the manifest describes. Without it, as {@link readWarmOptions}.
 */
export async function readApplianceWarmOptions(get: InputGetter): Promise<WarmOptions & { appliance?: Appliance; resources?: ResourceChoice }> {
  const dir = readString(get, 'appliance');
  if (dir === '') return readWarmOptions(get);
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
  const options = readWarmOptions(withManifest);
  return { ...options, ...(options.sbom ? { sbom: { ...options.sbom, appliance: appliance.name } } : {}), appliance, resources };
}

// ------------------------------------------------------------------- steps --

interface WarmState {
  opts: WarmOptions;
  log: (line: string) => void;
  onResources: (r: WarmResources) => void;
  onSecret: (secret: string) => void;
  seed?: CloudInitSeed;
  overlay?: string;
  serialLog?: string;
  vm?: VmHandle;
  vmExited?: boolean;
  session?: RemoteSession;
  init?: ExecResult;
  ready?: ExecResult;
  status?: unknown;
  manifest?: WarmManifest;
  timings: Record<string, number>;
  flattenTmp?: string;
  sbom?: SbomFile;
}

/** Runs a short tool (qemu-img info/create) to completion; rejects with its stderr on a non-zero exit. */
async function runShortTool(cmd: string, args: string[], signal?: AbortSignal): Promise<string> {
  if (signal?.aborted) throw new Error(`${cmd} was cancelled`);
  const r = await toolOutput(cmd, args).catch((e: Error) => Promise.reject(new Error(`cannot run ${cmd}: ${e.message}`)));
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Runs a long program (the flatten's qemu-img convert) to completion; rejects with its stderr on a non-zero exit. */
function runTool(cmd: string, args: string[], signal?: AbortSignal, onStdout?: (chunk: string) => void): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    // spawn, not @actions/exec: a long child that must stop when the warm is cancelled (the abort signal).
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      if (onStdout) onStdout(d.toString());
      else out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(e.name === 'AbortError' ? new Error(`${cmd} was cancelled`) : new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolvePromise(out) : reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}): ${err.trim()}`))));
  });
}

const tail = (text: string, lines = 25) => text.split('\n').filter((l) => l.trim() !== '').slice(-lines).join('\n');

const overlayStep: Step<WarmState> = {
  name: 'overlay',
  skip: (s) => s.opts.attach !== undefined,
  run: async (s, signal) => {
    const image = resolve(s.opts.image!);
    const infoText = await runShortTool('qemu-img', ['info', '--output=json', image], signal);
    const format = (JSON.parse(infoText) as { format?: string }).format ?? 'qcow2';
    const output = resolve(s.opts.output!);
    s.overlay = `${output}.overlay.qcow2`;
    s.serialLog = `${output}.serial.log`;
    await rm(s.overlay, { force: true });
    s.onResources({ overlay: s.overlay, serialLog: s.serialLog });
    await runShortTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', format, s.overlay], signal);
    s.log(`overlay ${s.overlay} on ${basename(image)} (${format}; the standard image is not modified)`);
  },
  cleanup: async (s) => {
    if (s.overlay) await rm(s.overlay, { force: true });
  },
};

const seedStep: Step<WarmState> = {
  name: 'seed',
  skip: (s) => !s.opts.cloudInitSeed || s.opts.attach !== undefined,
  run: async (s, signal) => {
    const o = s.opts;
    const parentDir = process.env['RUNNER_TEMP'] && existsSync(process.env['RUNNER_TEMP']) ? process.env['RUNNER_TEMP'] : undefined;
    s.seed = await createSeed({ user: o.sshUser, ...(o.sshKey ? { privateKey: o.sshKey } : {}), ...(o.sshPassphrase ? { passphrase: o.sshPassphrase } : {}), ...(parentDir ? { parentDir } : {}), keyComment: `labforge-warm-${o.version}`, signal });
    s.onResources({ seedDir: s.seed.dir });
    if (!o.sshKey) s.onSecret(s.seed.privateKey);
    // The state's own copy of the options: the key to log in with and the seed disk for QEMU.
    s.opts = { ...o, sshKey: s.seed.privateKey, qemuArgs: [...o.qemuArgs, ...seedQemuArgs(s.seed)] };
    s.log(`cloud-init seed ${s.seed.iso} (volume ${SEED_VOLUME_ID}, made with ${s.seed.isoTool}, attached as a read-only virtio disk): authorizes ${o.sshKey ? 'the given key' : 'a new ed25519 key'} for ${o.sshUser} with passwordless sudo; instance-id ${s.seed.instanceId}`);
  },
  cleanup: async (s) => {
    if (s.seed) {
      await removeSeed(s.seed);
      s.log(`removed the cloud-init seed and its key (${s.seed.dir})`);
    }
  },
};

const bootStep: Step<WarmState> = {
  name: 'boot',
  skip: (s) => s.opts.attach !== undefined,
  run: async (s) => {
    const o = s.opts;
    s.vm = await startVm({
      image: s.overlay!,
      accelerator: o.accelerator,
      memoryMiB: o.memoryMiB,
      cpus: o.cpus,
      nested: o.nested,
      serialLog: s.serialLog!,
      extraArgs: o.qemuArgs,
    });
    s.onResources({ qemuPid: s.vm.pid, overlay: s.overlay, serialLog: s.serialLog });
    void s.vm.exited.then(() => (s.vmExited = true));
    s.log(`QEMU pid ${s.vm.pid} (${o.accelerator}, ${o.cpus} CPU, ${o.memoryMiB} MiB${o.nested ? ', -cpu host' : ''}); SSH on 127.0.0.1:${s.vm.sshPort}; serial console → ${s.serialLog}`);
  },
  cleanup: async (s) => {
    if (s.vm && !s.vmExited) {
      s.log(`stopping QEMU pid ${s.vm.pid}`);
      await s.vm.kill();
    }
  },
};

const sshUpStep: Step<WarmState> = {
  name: 'ssh-up',
  run: async (s, signal) => {
    const o = s.opts;
    const host = o.attach?.host ?? '127.0.0.1';
    const port = o.attach?.port ?? s.vm!.sshPort;
    let lastNote = 0;
    try {
      s.session = await connectSsh({
        host,
        port,
        username: o.sshUser,
        privateKey: o.sshKey,
        ...(o.sshPassphrase ? { passphrase: o.sshPassphrase } : {}),
        ...(o.expectedHostKey ? { expectedHostKey: o.expectedHostKey } : {}),
        timeoutMs: o.sshTimeoutMinutes * 60_000,
        attemptTimeoutMs: 20_000,
        // With a seed, cloud-init authorizes the key during boot: sshd may refuse it until then.
        ...(o.cloudInitSeed ? { refusedKeyAttempts: Number.POSITIVE_INFINITY } : {}),
        signal,
        onAttemptFailed: (n, e, ms) => {
          if (s.vmExited) throw new Error(`QEMU exited while waiting for SSH (see ${s.serialLog})`);
          if (ms - lastNote >= 15_000) {
            lastNote = ms;
            s.log(`waiting for SSH on ${host}:${port} (${Math.round(ms / 1000)} s, attempt ${n}: ${printable(e.message)})`);
          }
        },
      });
    } catch (e) {
      if (signal.aborted || !(e instanceof SshConnectTimeoutError || s.vmExited)) throw e;
      throw new Error(`${(e as Error).message}\n${await sshVerdict(host, port, o, s.serialLog)}`, { cause: e });
    }
    s.log(`SSH up as ${o.sshUser}@${host}:${port} (host key ${s.session.hostKeyFingerprint})`);
  },
  cleanup: async (s) => {
    s.session?.close();
  },
};

/**
 * Why SSH did not come up: the ssh-diagnose verdict (layered probes, cause, fix) with the serial console's
 * telling lines; if the diagnosis itself cannot run, at least those lines.
 */
async function sshVerdict(host: string, port: number, o: WarmOptions, serialLog: string | undefined): Promise<string> {
  try {
    const diagnosis = await diagnoseSsh({
      host,
      port,
      username: o.sshUser,
      privateKey: o.sshKey,
      ...(o.sshPassphrase ? { passphrase: o.sshPassphrase } : {}),
      ...(o.expectedHostKey ? { expectedHostKey: o.expectedHostKey } : {}),
      timeoutSeconds: 15,
      waitSeconds: 0,
      command: 'true',
      checkSudo: true,
      ...(serialLog ? { serialLog } : {}),
    });
    return formatDiagnosis(diagnosis).trimEnd();
  } catch (e) {
    const lines = [`(ssh-diagnose could not run: ${(e as Error).message})`];
    if (serialLog) {
      const evidence = await relevantSerialLines({ path: serialLog });
      lines.push(`Serial log ${serialLog}:`, ...(evidence.lines.length > 0 ? evidence.lines.map((l) => `  ${l.line} [${l.finding}] ${l.text}`) : evidence.tail.map((t) => `  ${t}`)));
    }
    return lines.join('\n');
  }
}

/** Runs a remote command, streaming its output; fails with its exit code and last lines. */
async function remoteStep(s: WarmState, what: string, command: string, timeoutMinutes: number, signal: AbortSignal): Promise<ExecResult> {
  s.log(`$ ${printable(command, 2000)}`);
  // The guest's output, escaped line by line: a guest line can never be a workflow command or a terminal escape.
  const r = await s.session!.exec(command, { timeoutMs: timeoutMinutes * 60_000, signal, onLine: (line) => { for (const l of logLines(line)) s.log(`  | ${l}`); } });
  if (r.code !== 0) {
    const evidence = tail(`${r.stdout}\n${r.stderr}`);
    throw new Error(`${what} failed: '${printable(command, 2000)}' exited with ${r.code ?? `signal ${r.signal ?? '?'}`} after ${Math.round(r.durationMs / 1000)} s${evidence ? `; last output:\n${logText(evidence)}` : ' (no output)'}`);
  }
  return r;
}

const initStep: Step<WarmState> = {
  name: 'init',
  run: async (s, signal) => {
    s.init = await remoteStep(s, 'lab initialization', s.opts.initCommand, s.opts.initTimeoutMinutes, signal);
  },
};

const readyStep: Step<WarmState> = {
  name: 'ready',
  run: async (s, signal) => {
    s.ready = await remoteStep(s, 'readiness check', s.opts.readyCommand, s.opts.readyTimeoutMinutes, signal);
    if (s.opts.statusCommand !== '') {
      const st = await s.session!.exec(s.opts.statusCommand, { timeoutMs: 120_000, signal });
      try {
        s.status = st.code === 0 ? JSON.parse(st.stdout) : null;
      } catch {
        s.status = null;
      }
    }
    s.log(`lab ready (${Math.round(s.ready.durationMs / 1000)} s): ${printable(tail(s.ready.stdout, 1)) || 'probe exit 0'}`);
  },
};

const markStep: Step<WarmState> = {
  name: 'mark',
  run: async (s) => {
    const o = s.opts;
    const r = s.ready!;
    s.manifest = {
      schema: 1,
      buildType: 'prewarmed',
      labVersion: o.version,
      warmedAt: new Date().toISOString(),
      mode: o.attach ? 'attach' : 'boot',
      ...(o.image ? { sourceImage: basename(o.image), accelerator: o.accelerator } : {}),
      timings: { ...s.timings },
      init: { command: o.initCommand, exitCode: s.init!.code, seconds: Math.round(s.init!.durationMs / 100) / 10 },
      readiness: {
        command: o.readyCommand,
        exitCode: r.code,
        seconds: Math.round(r.durationMs / 100) / 10,
        provedAt: new Date().toISOString(),
        output: tail(`${r.stdout}\n${r.stderr}`, 40),
        status: s.status ?? null,
      },
    };
    // The manifest first, the marker last: a marker always has its evidence next to it.
    await s.session!.writeFile(o.manifestPath, JSON.stringify(s.manifest, null, 2) + '\n', { sudo: true, mode: '0644' });
    await s.session!.writeFile(o.markerPath, 'prewarmed\n', { sudo: true, mode: '0644' });
    s.log(`marker ${o.markerPath} = prewarmed; manifest ${o.manifestPath}`);
  },
};

const sealStep: Step<WarmState> = {
  name: 'seal',
  skip: (s) => !s.opts.seal,
  run: async (s, signal) => {
    await remoteStep(s, 'sealing', s.opts.sealCommand, 10, signal);
  },
};

// The inventory the seal took, read over the same session before the shutdown, becomes the SBOM.
const sbomStep: Step<WarmState> = {
  name: 'sbom',
  skip: (s) => !s.opts.seal || !s.opts.sbom,
  run: async (s, signal) => {
    const { out, appliance } = s.opts.sbom!;
    s.sbom = await sbomFromGuest(s.session!, { out, subject: { appliance, buildType: 'prewarmed', version: s.opts.version, buildDate: new Date().toISOString(), gitSha: buildGitSha() }, log: s.log, signal });
  },
};

const shutdownStep: Step<WarmState> = {
  name: 'shutdown',
  skip: (s) => s.opts.attach !== undefined,
  run: async (s) => {
    const vm = s.vm!;
    const timeoutMs = s.opts.shutdownTimeoutSeconds * 1000;
    s.log('powering off the guest');
    // poweroff over SSH (the connection drops when it works); ACPI through QEMU's handle as the fallback.
    const closed = s.session!.closed();
    s.session!.exec('sudo -n systemctl poweroff', { timeoutMs: 30_000 }).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, vm.exited, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
    clearTimeout(timer);
    s.session!.close();
    const stopped = await vm.shutdown({ timeoutMs });
    s.vmExited = true;
    if (!stopped.clean) s.log(`the guest did not power off within ${s.opts.shutdownTimeoutSeconds} s; QEMU was killed (the disk was synced by seal)`);
  },
};

const flattenStep: Step<WarmState> = {
  name: 'flatten',
  skip: (s) => s.opts.attach !== undefined,
  run: async (s, signal) => {
    const output = resolve(s.opts.output!);
    s.flattenTmp = `${output}.partial`;
    await mkdir(dirname(output), { recursive: true });
    // qemu-img -p prints "(12.34/100%)" with carriage returns: one progress line every 5 s, and the last.
    const t0 = Date.now();
    let next = t0 + 5_000;
    let percent = 0;
    const progress = () => {
      const elapsed = (Date.now() - t0) / 1000;
      const eta = percent > 0 ? Math.round((elapsed * (100 - percent)) / percent) : undefined;
      s.log(`flatten: ${percent.toFixed(1)}% (${elapsed.toFixed(0)} s${eta !== undefined && percent < 100 ? `, ETA ${eta} s` : ''})`);
    };
    await runTool('qemu-img', ['convert', '-p', '-O', 'qcow2', s.overlay!, s.flattenTmp], signal, (chunk) => {
      const m = [...chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)].at(-1);
      if (m) percent = Number(m[1]);
      if (Date.now() >= next) {
        next = Date.now() + 5_000;
        progress();
      }
    });
    percent = 100;
    progress();
    await rename(s.flattenTmp, output);
    s.flattenTmp = undefined;
    const size = (await stat(output)).size;
    s.log(`pre-warmed image ${output} (${(size / 1024 / 1024).toFixed(0)} MiB)`);
  },
  cleanup: async (s) => {
    if (s.flattenTmp) await rm(s.flattenTmp, { force: true });
  },
};

/** The steps of a warm, in order. */
export const WARM_STEPS: Step<WarmState>[] = [overlayStep, seedStep, bootStep, sshUpStep, initStep, readyStep, markStep, sealStep, sbomStep, shutdownStep, flattenStep];

/** Warms an image (or an attached machine). Rejects with a {@link WarmError} naming the failed step. */
export async function warmImage(opts: WarmOptions, run: WarmRunOptions = {}): Promise<WarmResult> {
  const log = run.log ?? (() => undefined);
  const state: WarmState = { opts, log, onResources: run.onResources ?? (() => undefined), onSecret: run.onSecret ?? (() => undefined), timings: {} };
  const started = Date.now();
  let steps: StepTiming[];
  try {
    steps = await runSteps(WARM_STEPS, state, {
      ...(run.signal ? { signal: run.signal } : {}),
      onStepStart: (name) => {
        log(`== ${name}`);
        run.onStepStart?.(name);
      },
      onStepEnd: (t) => {
        if (t.status !== 'skipped') state.timings[t.step] = t.seconds;
      },
      onCleanupError: (step, e) => log(`cleanup of ${step} failed: ${printable(e.message)}`),
    });
  } catch (e) {
    if (e instanceof StepFailedError) {
      const cancelled = e.timeline.at(-1)?.status === 'cancelled';
      throw new WarmError(e.step, cancelled ? `warm cancelled during ${e.step}; QEMU stopped and the overlay removed` : `warm failed at ${e.step}: ${e.cause.message}`, e.timeline);
    }
    throw e;
  }
  const timeline = Object.fromEntries(steps.filter((t) => t.status === 'ok').map((t) => [t.step, t.seconds]));
  return {
    ...(opts.output ? { image: resolve(opts.output) } : {}),
    warmSeconds: Math.round((Date.now() - started) / 100) / 10,
    timeline,
    steps,
    manifest: state.manifest!,
    ...(state.serialLog ? { serialLog: state.serialLog } : {}),
    ...(state.sbom ? { sbom: state.sbom } : {}),
  };
}

/**
 * Cleans up after a warm whose process is gone (the action's `post:` step, after cancellation): kills the
 * QEMU process group by PID and removes the overlay and the cloud-init seed. Returns what it did.
 */
export async function cleanupWarm(resources: WarmResources): Promise<string[]> {
  const done: string[] = [];
  if (resources.qemuPid && resources.qemuPid > 1) {
    const pid = resources.qemuPid;
    const alive = (p: number) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    };
    if (alive(pid) && (await isQemu(pid))) {
      for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
        try {
          process.kill(-pid, sig);
        } catch {
          try {
            process.kill(pid, sig);
          } catch {
            /* gone */
          }
        }
        for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
        if (!alive(pid)) break;
      }
      done.push(`killed QEMU pid ${pid}`);
    }
  }
  if (resources.overlay && existsSync(resources.overlay)) {
    await rm(resources.overlay, { force: true });
    done.push(`removed overlay ${resources.overlay}`);
  }
  // Only a directory createSeed made (the name comes from saved state: never remove anything else).
  if (resources.seedDir && basename(resources.seedDir).startsWith('labforge-seed-') && existsSync(resources.seedDir)) {
    await removeSeed({ dir: resources.seedDir });
    done.push(`removed cloud-init seed ${resources.seedDir}`);
  }
  return done;
}

/** True when PID is a QEMU process (never kill a recycled PID that belongs to something else). */
async function isQemu(pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return /qemu-system/.test(cmdline.split('\0')[0] ?? '');
  } catch {
    return false;
  }
}

/** The timeline as a compact JSON object (the action's `timeline` output). */
export function timelineJson(result: Pick<WarmResult, 'timeline'>): string {
  return JSON.stringify(result.timeline);
}

/** A shell command line from words (for composing init/ready commands). */
export function commandLine(words: string[]): string {
  return words.map(shellQuote).join(' ');
}
