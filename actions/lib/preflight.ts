/**
 * Checks a machine before anything slow starts: hardware acceleration, tools, disk, memory. Each check
 * returns a verdict with a one-line fix; `assertPreflight` turns failures into one error that lists them.
 *
 * Two modes, one set of checks:
 * - **build** (packer-build, `labforge packer-build`, `labforge preflight`): KVM as the accelerator input says,
 *   packer, qemu, qemu-img, disk and memory for the given sizes;
 * - **local** (`labforge doctor`, and `labforge pipeline` before anything slow): the same checks plus every
 *   other program the local pipeline runs ({@link LOCAL_TOOLS}), KVM decided by what works here (else TCG),
 *   disk and memory from the appliance's manifest. A missing program is named with its Debian package, and
 *   the report carries ONE `apt-get install` line for all of them.
 *
 * Why KVM first: without a usable `/dev/kvm`, Packer's qemu plugin falls back to TCG without a word and
 * a real appliance build dies hours later at "Waiting for SSH". Here it fails in a second, with the fix.
 */
import { getExecOutput } from '@actions/exec';
import { which } from '@actions/io';
import { constants, existsSync } from 'node:fs';
import { open, readFile, stat, statfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Appliance, ResourceChoice } from './appliance.js';
import { checkOutputDirectory, readChoice, readInt, readString, type InputGetter } from './inputs.js';
import { kvmAvailable } from './qemu-vm.js';

export const ACCELERATORS = ['kvm', 'tcg'] as const;
export type Accelerator = (typeof ACCELERATORS)[number];

/**
 * The `accelerator` input: `kvm` (the default), `tcg`, or `auto` — KVM where it can be used here, else TCG
 * (for appliances whose manifest says `kvm: preferred`, e.g. the demo appliance on a runner without KVM).
 */
export function readAccelerator(get: InputGetter, log?: (line: string) => void): Accelerator {
  const choice = readChoice(get, 'accelerator', [...ACCELERATORS, 'auto'] as const, 'kvm');
  if (choice !== 'auto') return choice;
  const chosen = kvmAvailable() ? 'kvm' : 'tcg';
  log?.(`accelerator auto: ${chosen} (${chosen === 'kvm' ? '/dev/kvm and vmx/svm present' : 'no usable KVM here: software emulation, 10-50x slower'})`);
  return chosen;
}

/** The outcome of one check. */
export interface Verdict {
  /** What was checked: `kvm`, `packer`, `qemu`, `qemu-img`, `disk`, `memory`, or another tool's name. */
  check: string;
  ok: boolean;
  /** What was found (a version, a size, the problem). */
  detail: string;
  /** What to do, when not ok. */
  fix?: string;
  /** Tool checks: the version found. */
  version?: string;
  /** Tool checks that failed: the Debian package that provides the tool. */
  package?: string;
}

export interface KvmCheckOptions {
  accelerator: Accelerator;
  /** The KVM device (default `/dev/kvm`; tests pass another path). */
  devicePath?: string;
}

/** The device numbers of /dev/kvm (Linux: misc major 10, KVM_MINOR 232). */
const KVM_MAJOR = 10;
const KVM_MINOR = 232;

/** `/dev/kvm` exists, is the KVM character device (10:232) and opens read-write for this user (only when the accelerator is kvm). */
export async function checkKvm(options: KvmCheckOptions): Promise<Verdict> {
  const device = options.devicePath ?? '/dev/kvm';
  if (options.accelerator === 'tcg') {
    return { check: 'kvm', ok: true, detail: 'not needed: accelerator tcg was asked for explicitly (software emulation, 10-50x slower)' };
  }
  const info = await stat(device).catch(() => undefined);
  if (!info) {
    return {
      check: 'kvm',
      ok: false,
      detail: `${device} does not exist: this machine offers no KVM (no hardware virtualization, or the kvm module is not loaded)`,
      fix: 'run on a KVM runner (see runner-setup), enable nested virtualization / load kvm_intel or kvm_amd, or set accelerator: tcg for a slow test build',
    };
  }
  const given = device === '/dev/kvm' ? device : `kvm-device ${device}`;
  if (!info.isCharacterDevice()) {
    // Never suggest removing it: a kvm-device input may name any file of the user's.
    const kind = info.isDirectory() ? 'a directory' : info.isFile() ? 'a regular file' : info.isSymbolicLink() ? 'a symbolic link' : 'not a device';
    return {
      check: 'kvm',
      ok: false,
      detail: `${given} is ${kind}, not the KVM device (character device ${KVM_MAJOR}:${KVM_MINOR})`,
      fix: device === '/dev/kvm' ? 'load the kvm module (modprobe kvm_intel or kvm_amd) so that udev creates /dev/kvm, or set accelerator: tcg for a slow test build' : 'give the KVM device in kvm-device (default /dev/kvm), or set accelerator: tcg for a slow test build',
    };
  }
  const [major, minor] = [Math.floor(info.rdev / 256) & 0xfff, (info.rdev & 0xff) | ((Math.floor(info.rdev / 4096) & 0xfff00) >>> 0)];
  if (major !== KVM_MAJOR || minor !== KVM_MINOR) {
    return {
      check: 'kvm',
      ok: false,
      detail: `${given} is character device ${major}:${minor}, not the KVM device (${KVM_MAJOR}:${KVM_MINOR})`,
      fix: device === '/dev/kvm' ? 'load the kvm module (modprobe kvm_intel or kvm_amd); a /dev/kvm with other numbers was not made by udev for KVM' : 'give the KVM device in kvm-device (default /dev/kvm), or set accelerator: tcg for a slow test build',
    };
  }
  // (Errors are told apart by shape, not instanceof: they may come from another realm under test runners.)
  const opened = await open(device, constants.O_RDWR).then(
    (handle) => ({ handle, error: undefined }),
    (error: NodeJS.ErrnoException) => ({ handle: undefined, error }),
  );
  if (opened.error || !opened.handle) {
    const handle = opened.error ?? new Error('no handle');
    const user = process.env.USER ?? `uid ${process.getuid?.() ?? '?'}`;
    if (handle.code === 'ENXIO' || handle.code === 'ENODEV') {
      return {
        check: 'kvm',
        ok: false,
        detail: `${given} is the KVM device node (${KVM_MAJOR}:${KVM_MINOR}) but no KVM driver answers it (${handle.code}): the kvm module is not loaded`,
        fix: 'load kvm_intel or kvm_amd (modprobe), enable hardware or nested virtualization, or set accelerator: tcg for a slow test build',
      };
    }
    return {
      check: 'kvm',
      ok: false,
      detail: `${device} is not read-write for ${user} (${handle.code ?? handle.message})`,
      fix: `add the user to the kvm group (sudo usermod -aG kvm ${user}) and restart the runner service, or run runner-setup`,
    };
  }
  await opened.handle.close();
  return { check: 'kvm', ok: true, detail: `${device} is the KVM device (${KVM_MAJOR}:${KVM_MINOR}) and opens read-write` };
}

export interface ToolCheckOptions {
  /** Name in verdicts: `packer`, `qemu`, `qemu-img`. */
  check: string;
  /** The executable (name on PATH or a path). */
  command: string;
  /** Other executables that do the same job (the first one found is checked). */
  alternatives?: string[];
  /** Arguments that print the version; absent: the tool has none, only its presence is checked. */
  versionArgs?: string[];
  /** How to install it, for the fix. */
  install: string;
  /** The Debian package that provides it (named in the verdict when the check fails). */
  package?: string;
  /** Lowest acceptable version (dotted numbers), if any. */
  minimum?: string;
}

const versionPattern = /(\d+\.\d+(?:\.\d+)?)/;

/** Compares dotted version numbers: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Finds `command` (or an alternative) on PATH, runs `command versionArgs` (a short probe, through
 * `@actions/exec`, silent), reads the first version number it prints, checks it against `minimum`.
 */
export async function checkTool(options: ToolCheckOptions): Promise<Verdict> {
  const pkg = options.package ? { package: options.package } : {};
  let command = options.command;
  let path = '';
  for (const candidate of [options.command, ...(options.alternatives ?? [])]) {
    path = await which(candidate, false).catch(() => '');
    if (path) {
      command = candidate;
      break;
    }
  }
  if (!path) {
    const tried = options.alternatives?.length ? ` (nor ${options.alternatives.join(', ')})` : '';
    return { check: options.check, ok: false, detail: `${options.command} was not found${tried}`, fix: options.install, ...pkg };
  }
  if (!options.versionArgs) return { check: options.check, ok: true, detail: `${command} at ${path}` };
  const result = await getExecOutput(path, options.versionArgs, { silent: true, ignoreReturnCode: true }).then(
    (r) => ({ code: r.exitCode, out: `${r.stdout}${r.stderr}`, error: undefined }),
    (error: Error) => ({ code: -1, out: '', error }),
  );
  if (result.error) return { check: options.check, ok: false, detail: `${command} cannot run (${result.error.message})`, fix: options.install, ...pkg };
  const version = versionPattern.exec(result.out)?.[1];
  if (result.code !== 0 || version === undefined) {
    return { check: options.check, ok: false, detail: `${command} ${options.versionArgs.join(' ')} failed: ${result.out.trim().split('\n')[0] ?? ''}`, fix: options.install, ...pkg };
  }
  if (options.minimum && compareVersions(version, options.minimum) < 0) {
    return { check: options.check, ok: false, version, detail: `${command} is version ${version}, older than ${options.minimum}`, fix: options.install, ...pkg };
  }
  return { check: options.check, ok: true, version, detail: `${command} ${version}` };
}

export interface DiskCheckOptions {
  /** A directory on the file system that will hold the image and the OVA. */
  path: string;
  requiredBytes: number;
  /** What needs the space, said in the verdict (default: the image and the OVA, estimated). */
  basis?: string;
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;

/** The file system holding `path` has `requiredBytes` free for this user. */
export async function checkFreeDisk(options: DiskCheckOptions): Promise<Verdict> {
  const result = await statfs(options.path).then(
    (fs) => ({ fs, error: undefined }),
    (error: Error) => ({ fs: undefined, error }),
  );
  if (!result.fs) return { check: 'disk', ok: false, detail: `cannot inspect ${options.path} (${result.error?.message})`, fix: 'create the output directory or choose another one' };
  const fs = result.fs;
  const free = fs.bavail * fs.bsize;
  if (free < options.requiredBytes) {
    return {
      check: 'disk',
      ok: false,
      detail: `${gib(free)} free under ${options.path}, ${options.basis ? `${options.basis} needs` : 'the image and the OVA need about'} ${gib(options.requiredBytes)}`,
      fix: 'free disk space, point the output at a bigger volume, or lower expected-image-gib if the estimate is too high',
    };
  }
  return { check: 'disk', ok: true, detail: `${gib(free)} free under ${options.path} (need ${gib(options.requiredBytes)}${options.basis ? ` for ${options.basis}` : ''})` };
}

export interface MemoryCheckOptions {
  requiredMiB: number;
  /** Where to read MemAvailable (default `/proc/meminfo`). */
  meminfoPath?: string;
}

/**
 * The machine has at least `requiredCpus` CPUs for the VM's vCPUs (the resource profile's size, e.g. a
 * Hedgehog VLAB topology's): fewer fail with what is needed and what is there.
 */
export function checkCpus(options: { requiredCpus: number; cpuCount?: number; profile?: string }): Verdict {
  const here = options.cpuCount ?? availableParallelism();
  const what = options.profile ? ` (resource profile ${options.profile})` : '';
  if (here < options.requiredCpus) {
    return { check: 'cpus', ok: false, detail: `${here} CPUs here, the VM needs ${options.requiredCpus}${what}`, fix: 'use a runner with more cores, or choose a smaller profile (input profile)' };
  }
  return { check: 'cpus', ok: true, detail: `${here} CPUs (need ${options.requiredCpus})` };
}

/** The machine has `requiredMiB` of available memory (MemAvailable) for the VM. */
export async function checkMemory(options: MemoryCheckOptions): Promise<Verdict> {
  const path = options.meminfoPath ?? '/proc/meminfo';
  const text = await readFile(path, 'utf8').catch(() => '');
  const kib = /^MemAvailable:\s+(\d+)\s+kB/m.exec(text)?.[1];
  if (kib === undefined) return { check: 'memory', ok: false, detail: `cannot read MemAvailable from ${path}`, fix: 'run on Linux (the build needs /proc/meminfo)' };
  const availableMiB = Math.floor(Number(kib) / 1024);
  if (availableMiB < options.requiredMiB) {
    return {
      check: 'memory',
      ok: false,
      detail: `${availableMiB} MiB memory available, the VM needs ${options.requiredMiB} MiB`,
      fix: 'stop other VMs or jobs on this runner, use a bigger runner, or lower vm-memory-mib',
    };
  }
  return { check: 'memory', ok: true, detail: `${availableMiB} MiB available (need ${options.requiredMiB} MiB)` };
}

/** A program a stage runs: how to probe it and which Debian package provides it. */
export interface ToolSpec extends Omit<ToolCheckOptions, 'install'> {
  package: string;
  /** What the pipeline uses it for (shown by `labforge doctor`). */
  purpose: string;
  /** The fix, when more than installing the package (default: `apt-get install <package>`). */
  install?: string;
  /** Needed only when not running as root (e.g. newuidmap for a user namespace). */
  unprivilegedOnly?: boolean;
}

/** What a Packer build itself runs (checked in both modes). */
export const BUILD_TOOLS: readonly ToolSpec[] = [
  { check: 'packer', command: 'packer', versionArgs: ['version'], minimum: '1.6.0', package: 'packer', purpose: 'the Packer build', install: 'install Packer 1.6 or newer (apt-get install packer, or from releases.hashicorp.com)' },
  { check: 'qemu', command: 'qemu-system-x86_64', versionArgs: ['--version'], package: 'qemu-system-x86', purpose: 'boots the build and warm VMs', install: 'install QEMU (apt-get install qemu-system-x86)' },
  { check: 'qemu-img', command: 'qemu-img', versionArgs: ['--version'], minimum: '5.0', package: 'qemu-utils', purpose: 'overlays, flattening, the OVA disk', install: 'install qemu-img 5.0 or newer (apt-get install qemu-utils)' },
];

/**
 * What else the local pipeline runs on this machine (SSH to the guest goes through the ssh2 library, keys are
 * made in Node: no ssh or ssh-keygen program is needed).
 */
export const LOCAL_TOOLS: readonly ToolSpec[] = [
  // Packer 1.6.6's cd_files wants mkisofs or xorriso; vlab-warm's seed genisoimage, mkisofs or xorrisofs.
  { check: 'genisoimage', command: 'genisoimage', alternatives: ['xorriso'], versionArgs: ['--version'], package: 'genisoimage', purpose: 'the cloud-init seed CD (Packer cd_files, vlab-warm)' },
  { check: 'openssl', command: 'openssl', versionArgs: ['version'], package: 'openssl', purpose: 'hashes the console password ($LABFORGE_CONSOLE_PASSWORD)' },
];

/** What an appliance's base-image command runs (packer/demo-lab/build-base.sh: the `need` lines there). */
export const BASE_IMAGE_TOOLS: readonly ToolSpec[] = [
  { check: 'mmdebstrap', command: 'mmdebstrap', versionArgs: ['--version'], package: 'mmdebstrap', purpose: 'the base image: Debian root file system' },
  { check: 'zstd', command: 'zstd', versionArgs: ['--version'], package: 'zstd', purpose: 'the base image: cached root file system' },
  { check: 'mke2fs', command: 'mke2fs', versionArgs: ['-V'], package: 'e2fsprogs', purpose: 'the base image: ext4 from a tree' },
  { check: 'sfdisk', command: 'sfdisk', versionArgs: ['--version'], package: 'fdisk', purpose: 'the base image: partition table' },
  { check: 'grub-mkimage', command: 'grub-mkimage', versionArgs: ['--version'], package: 'grub-pc-bin', purpose: 'the base image: BIOS boot loader' },
  { check: 'jq', command: 'jq', versionArgs: ['--version'], package: 'jq', purpose: 'the base image: its JSON result' },
  { check: 'flock', command: 'flock', versionArgs: ['--version'], package: 'util-linux', purpose: 'the base image: one builder at a time' },
  { check: 'unshare', command: 'unshare', versionArgs: ['--version'], package: 'util-linux', purpose: 'the base image: user namespace' },
  { check: 'newuidmap', command: 'newuidmap', package: 'uidmap', purpose: 'the base image without root: subordinate ids', unprivilegedOnly: true },
];

export interface PreflightOptions {
  /** `auto`: KVM where it is offered here (as `labforge pipeline` chooses), else TCG. */
  accelerator: Accelerator | 'auto';
  /** With `auto`: the appliance that cannot run without KVM (its manifest says `kvm: required`). */
  kvmRequiredBy?: string;
  /** Directory for the image and OVA, and bytes they need there. */
  outputDir: string;
  requiredDiskBytes: number;
  /** What requiredDiskBytes is made of, for the disk verdict (see {@link profileDiskNeeds}). */
  diskBasis?: string;
  requiredMemoryMiB: number;
  /** vCPUs the VM gets (the resource profile's `cpus`): fewer CPUs here fail the check. Unset: not checked. */
  requiredCpus?: number;
  /** CPUs of this machine (default `os.availableParallelism()`; tests set it). */
  cpuCount?: number;
  /** The resource profile the sizes come from, named in a failure. */
  profileName?: string;
  /** Executables (defaults: packer, qemu-system-x86_64, qemu-img on PATH). */
  packer?: string;
  qemu?: string;
  qemuImg?: string;
  kvmDevice?: string;
  meminfoPath?: string;
  /** Skip the packer check (OVA packing alone does not need it). */
  needPacker?: boolean;
  /** More programs to check after the build tools (local mode: {@link LOCAL_TOOLS}, base-image tools). */
  tools?: readonly ToolSpec[];
}

export interface PreflightReport {
  ok: boolean;
  /** The accelerator the checks were made for (`auto` resolved). */
  accelerator: Accelerator;
  verdicts: Verdict[];
  /** Versions found: packer, qemu, qemu-img (and the other tools checked). */
  versions: Record<string, string>;
  /** Debian packages of the tools that are missing or too old (sorted, once each). */
  missingPackages: string[];
  /** `apt-get install -y <missingPackages>`, or '' when none is missing. */
  aptInstall: string;
}

/** The one install line for the packages of failed tool checks ('' when none). */
export function aptInstallLine(packages: readonly string[]): string {
  return packages.length > 0 ? `apt-get install -y ${packages.join(' ')}` : '';
}

/** Resolves `auto` the way the pipeline chooses (KVM when offered here) and checks the device it will use. */
async function decideKvm(o: PreflightOptions): Promise<{ verdict: Verdict; accelerator: Accelerator }> {
  if (o.accelerator !== 'auto') return { verdict: await checkKvm({ accelerator: o.accelerator, devicePath: o.kvmDevice }), accelerator: o.accelerator };
  const device = o.kvmDevice ?? '/dev/kvm';
  // kvmAvailable() is what `labforge pipeline` decides by (/dev/kvm and vmx/svm); another device path is a test's.
  const offered = existsSync(device) && (device !== '/dev/kvm' || kvmAvailable());
  if (offered) {
    const verdict = await checkKvm({ accelerator: 'kvm', devicePath: device });
    return { verdict: verdict.ok ? { ...verdict, detail: `${verdict.detail}: builds run under KVM` } : verdict, accelerator: 'kvm' };
  }
  const why = existsSync(device) ? `${device} exists but the CPU advertises neither vmx nor svm` : `${device} does not exist`;
  if (o.kvmRequiredBy) {
    return {
      verdict: { check: 'kvm', ok: false, detail: `no usable KVM (${why}), and ${o.kvmRequiredBy} needs it (its manifest says kvm: required)`, fix: 'run on a KVM machine (see runner-setup), or enable nested virtualization / load kvm_intel or kvm_amd' },
      accelerator: 'tcg',
    };
  }
  return { verdict: { check: 'kvm', ok: true, detail: `no usable KVM (${why}): TCG, software emulation, 10-50x slower` }, accelerator: 'tcg' };
}

/** Runs every check (in parallel; they are independent) and returns all verdicts. */
export async function runPreflight(o: PreflightOptions): Promise<PreflightReport> {
  const commands: Record<string, string | undefined> = { packer: o.packer, qemu: o.qemu, 'qemu-img': o.qemuImg };
  const tool = (t: ToolSpec) => checkTool({ ...t, command: commands[t.check] ?? t.command, install: t.install ?? `apt-get install ${t.package}` });
  const kvm = decideKvm(o);
  const tools = [...BUILD_TOOLS.filter((t) => t.check !== 'packer' || o.needPacker !== false), ...(o.tools ?? [])];
  const once = tools.filter((t, i) => tools.findIndex((u) => u.check === t.check) === i);
  // Order of the report: packer, kvm, the other tools, disk, memory.
  const checks: Promise<Verdict>[] = [
    ...once.filter((t) => t.check === 'packer').map(tool),
    kvm.then((k) => k.verdict),
    ...once.filter((t) => t.check !== 'packer').map(tool),
    checkFreeDisk({ path: o.outputDir, requiredBytes: o.requiredDiskBytes, ...(o.diskBasis ? { basis: o.diskBasis } : {}) }),
    checkMemory({ requiredMiB: o.requiredMemoryMiB, meminfoPath: o.meminfoPath }),
    ...(o.requiredCpus ? [Promise.resolve(checkCpus({ requiredCpus: o.requiredCpus, ...(o.cpuCount ? { cpuCount: o.cpuCount } : {}), ...(o.profileName ? { profile: o.profileName } : {}) }))] : []),
  ];
  const verdicts = await Promise.all(checks);
  const versions: Record<string, string> = {};
  for (const v of verdicts) if (v.version) versions[v.check] = v.version;
  const missingPackages = [...new Set(verdicts.filter((v) => !v.ok && v.package).map((v) => v.package!))].sort();
  return { ok: verdicts.every((v) => v.ok), accelerator: (await kvm).accelerator, verdicts, versions, missingPackages, aptInstall: aptInstallLine(missingPackages) };
}

/** Preflight found problems; the message has one line per failed check: `<check>: <detail> (fix: <fix>)`, then the apt-get line. */
export class PreflightError extends Error {
  constructor(
    readonly failures: Verdict[],
    readonly aptInstall = '',
  ) {
    super(
      [...failures.map((f) => `preflight ${f.check}: ${f.detail}${f.fix ? ` (fix: ${f.fix})` : ''}`), ...(aptInstall ? [`preflight: install what is missing, as root: ${aptInstall}`] : [])].join('\n'),
    );
    this.name = 'PreflightError';
  }
}

/** Runs the preflight and throws a {@link PreflightError} listing every failed check. */
export async function assertPreflight(o: PreflightOptions): Promise<PreflightReport> {
  const report = await runPreflight(o);
  if (!report.ok) throw new PreflightError(report.verdicts.filter((v) => !v.ok), report.aptInstall);
  return report;
}

/** Disk and memory a build needs: the qcow2 and the OVA (a compressed VMDK, at most the qcow2's size) side by side; the VM plus QEMU. */
export function buildNeeds(expectedImageGiB: number, vmMemoryMiB: number): { requiredDiskBytes: number; requiredMemoryMiB: number } {
  return { requiredDiskBytes: 2 * expectedImageGiB * 2 ** 30, requiredMemoryMiB: vmMemoryMiB + 512 };
}

/**
 * Disk a build of a resource profile needs (issue 14): the VM's qcow2 can grow to the profile's disk size
 * (disk-gib), and the OVA beside it takes about the expected image size; never less than
 * {@link buildNeeds}' two images. Returns the bytes and, when the profile decides, the words the disk verdict uses.
 */
export function profileDiskNeeds(o: { expectedImageGiB: number; diskGiB: number; profile: string }): { requiredDiskBytes: number; diskBasis?: string } {
  const profileGiB = o.diskGiB + o.expectedImageGiB;
  if (profileGiB <= 2 * o.expectedImageGiB) return { requiredDiskBytes: 2 * o.expectedImageGiB * 2 ** 30 };
  return { requiredDiskBytes: profileGiB * 2 ** 30, diskBasis: `resource profile ${o.profile} (its ${o.diskGiB} GiB disk + a ${o.expectedImageGiB} GiB OVA)` };
}

/** Reads the preflight inputs shared by packer-build, `labforge packer-build` and `labforge preflight`. */
export function readPreflightOptions(get: InputGetter): PreflightOptions {
  const expectedImageGiB = readInt(get, 'expected-image-gib', 40, { min: 1, max: 16384 });
  return {
    accelerator: readChoice(get, 'accelerator', [...ACCELERATORS, 'auto'] as const, 'kvm'),
    kvmDevice: readString(get, 'kvm-device', '/dev/kvm'),
    outputDir: checkOutputDirectory(readString(get, 'output-dir', '.'), 'output-dir'),
    ...buildNeeds(expectedImageGiB, readInt(get, 'vm-memory-mib', 4096, { min: 128, max: 4 * 1024 * 1024 })),
  };
}

export interface LocalPreflightOptions {
  appliance: Appliance;
  resources: ResourceChoice;
  /** The pipeline's output directory (need not exist yet: its nearest existing parent is measured). */
  outDir: string;
  /** Default `auto`; the pipeline passes the accelerator it chose. */
  accelerator?: Accelerator | 'auto';
  kvmDevice?: string;
  meminfoPath?: string;
  /** Default: this process runs as root. */
  isRoot?: boolean;
}

/** The nearest directory at or above `path` that exists (the output directory is created later). */
function existingDir(path: string): string {
  let dir = resolve(path);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** Local mode: the programs the local pipeline runs for this appliance, besides {@link BUILD_TOOLS}. */
export function localTools(appliance: Appliance, isRoot = process.getuid?.() === 0): ToolSpec[] {
  const base = appliance.build.baseImage ? BASE_IMAGE_TOOLS.filter((t) => !t.unprivilegedOnly || !isRoot) : [];
  return [...LOCAL_TOOLS, ...base];
}

/** Local mode: the checks of `labforge doctor` and of `labforge pipeline` before anything slow. */
export function localPreflightOptions(o: LocalPreflightOptions): PreflightOptions {
  return {
    accelerator: o.accelerator ?? 'auto',
    ...(o.appliance.kvm === 'required' ? { kvmRequiredBy: o.appliance.name } : {}),
    outputDir: existingDir(o.outDir),
    ...buildNeeds(o.appliance.build.expectedImageGiB, o.resources.memoryMiB),
    ...profileDiskNeeds({ expectedImageGiB: o.appliance.build.expectedImageGiB, diskGiB: o.resources.diskGiB, profile: o.resources.name }),
    requiredCpus: o.resources.cpus,
    profileName: o.resources.name,
    ...(o.kvmDevice ? { kvmDevice: o.kvmDevice } : {}),
    ...(o.meminfoPath ? { meminfoPath: o.meminfoPath } : {}),
    tools: localTools(o.appliance, o.isRoot),
  };
}

/** The report as a table (status, check, what was found), each failure's fix, and the apt-get line. */
export function formatPreflightTable(r: PreflightReport): string {
  const w = Math.max(5, ...r.verdicts.map((v) => v.check.length));
  const out = [`${'check'.padEnd(w)}  ${'state'.padEnd(7)}  found`, `${'-'.repeat(w)}  -------  -----`];
  for (const v of r.verdicts) {
    const state = v.ok ? 'ok' : v.package && / was not found/.test(v.detail) ? 'MISSING' : 'FAIL';
    out.push(`${v.check.padEnd(w)}  ${state.padEnd(7)}  ${v.detail}`);
  }
  const failed = r.verdicts.filter((v) => !v.ok && v.fix && !(v.package && r.aptInstall));
  if (failed.length > 0) out.push('', ...failed.map((v) => `fix ${v.check}: ${v.fix}`));
  out.push('', `accelerator: ${r.accelerator}`);
  if (r.aptInstall) out.push('', `Missing programs; install them as root:`, `  ${r.aptInstall}`);
  return out.join('\n') + '\n';
}
