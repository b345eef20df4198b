/**
 * Checks a machine before anything slow starts: hardware acceleration, tools, disk, memory. Each check
 * returns a verdict with a one-line fix; `assertPreflight` turns failures into one error that lists them.
 *
 * Why KVM first: without a usable `/dev/kvm`, Packer's qemu plugin falls back to TCG without a word and
 * a real appliance build dies hours later at "Waiting for SSH". Here it fails in a second, with the fix.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { open, readFile, stat, statfs } from 'node:fs/promises';
import { readChoice, readInt, readString, type InputGetter } from './inputs.js';
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
  /** What was checked: `kvm`, `packer`, `qemu`, `qemu-img`, `disk`, `memory`. */
  check: string;
  ok: boolean;
  /** What was found (a version, a size, the problem). */
  detail: string;
  /** What to do, when not ok. */
  fix?: string;
  /** Tool checks: the version found. */
  version?: string;
}

export interface KvmCheckOptions {
  accelerator: Accelerator;
  /** The KVM device (default `/dev/kvm`; tests pass another path). */
  devicePath?: string;
}

/** `/dev/kvm` exists, is a character device and opens read-write for this user (only when the accelerator is kvm). */
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
  if (!info.isCharacterDevice()) {
    return { check: 'kvm', ok: false, detail: `${device} is not a character device`, fix: `remove whatever is at ${device} and load the kvm module (modprobe kvm_intel or kvm_amd)` };
  }
  // (Errors are told apart by shape, not instanceof: they may come from another realm under test runners.)
  const opened = await open(device, constants.O_RDWR).then(
    (handle) => ({ handle, error: undefined }),
    (error: NodeJS.ErrnoException) => ({ handle: undefined, error }),
  );
  if (opened.error || !opened.handle) {
    const handle = opened.error ?? new Error('no handle');
    const user = process.env.USER ?? `uid ${process.getuid?.() ?? '?'}`;
    return {
      check: 'kvm',
      ok: false,
      detail: `${device} is not read-write for ${user} (${handle.code ?? handle.message})`,
      fix: `add the user to the kvm group (sudo usermod -aG kvm ${user}) and restart the runner service, or run runner-setup`,
    };
  }
  await opened.handle.close();
  return { check: 'kvm', ok: true, detail: `${device} is usable` };
}

export interface ToolCheckOptions {
  /** Name in verdicts: `packer`, `qemu`, `qemu-img`. */
  check: string;
  /** The executable (name on PATH or a path). */
  command: string;
  /** Arguments that print the version. */
  versionArgs: string[];
  /** How to install it, for the fix. */
  install: string;
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

/** Runs `command versionArgs`, reads the first version number it prints, checks it against `minimum`. */
export async function checkTool(options: ToolCheckOptions): Promise<Verdict> {
  const result = await new Promise<{ code: number | null; out: string; error?: NodeJS.ErrnoException }>((resolve) => {
    const child = spawn(options.command, options.versionArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (error: NodeJS.ErrnoException) => resolve({ code: null, out, error }));
    child.on('close', (code) => resolve({ code, out }));
  });
  if (result.error) {
    const missing = result.error.code === 'ENOENT';
    return {
      check: options.check,
      ok: false,
      detail: missing ? `${options.command} was not found` : `${options.command} cannot run (${result.error.message})`,
      fix: options.install,
    };
  }
  const version = versionPattern.exec(result.out)?.[1];
  if (result.code !== 0 || version === undefined) {
    return { check: options.check, ok: false, detail: `${options.command} ${options.versionArgs.join(' ')} failed: ${result.out.trim().split('\n')[0] ?? ''}`, fix: options.install };
  }
  if (options.minimum && compareVersions(version, options.minimum) < 0) {
    return { check: options.check, ok: false, version, detail: `${options.command} is version ${version}, older than ${options.minimum}`, fix: options.install };
  }
  return { check: options.check, ok: true, version, detail: `${options.command} ${version}` };
}

export interface DiskCheckOptions {
  /** A directory on the file system that will hold the image and the OVA. */
  path: string;
  requiredBytes: number;
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
      detail: `${gib(free)} free under ${options.path}, the image and the OVA need about ${gib(options.requiredBytes)}`,
      fix: 'free disk space, point the output at a bigger volume, or lower expected-image-gib if the estimate is too high',
    };
  }
  return { check: 'disk', ok: true, detail: `${gib(free)} free under ${options.path} (need ${gib(options.requiredBytes)})` };
}

export interface MemoryCheckOptions {
  requiredMiB: number;
  /** Where to read MemAvailable (default `/proc/meminfo`). */
  meminfoPath?: string;
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

export interface PreflightOptions {
  accelerator: Accelerator;
  /** Directory for the image and OVA, and bytes they need there. */
  outputDir: string;
  requiredDiskBytes: number;
  requiredMemoryMiB: number;
  /** Executables (defaults: packer, qemu-system-x86_64, qemu-img on PATH). */
  packer?: string;
  qemu?: string;
  qemuImg?: string;
  kvmDevice?: string;
  meminfoPath?: string;
  /** Skip the packer check (OVA packing alone does not need it). */
  needPacker?: boolean;
}

export interface PreflightReport {
  ok: boolean;
  verdicts: Verdict[];
  /** Versions found: packer, qemu, qemu-img. */
  versions: Record<string, string>;
}

/** Runs every check (in parallel; they are independent) and returns all verdicts. */
export async function runPreflight(o: PreflightOptions): Promise<PreflightReport> {
  const checks: Promise<Verdict>[] = [
    checkKvm({ accelerator: o.accelerator, devicePath: o.kvmDevice }),
    checkTool({ check: 'qemu', command: o.qemu ?? 'qemu-system-x86_64', versionArgs: ['--version'], install: 'install QEMU (apt-get install qemu-system-x86)' }),
    checkTool({ check: 'qemu-img', command: o.qemuImg ?? 'qemu-img', versionArgs: ['--version'], minimum: '5.0', install: 'install qemu-img 5.0 or newer (apt-get install qemu-utils)' }),
    checkFreeDisk({ path: o.outputDir, requiredBytes: o.requiredDiskBytes }),
    checkMemory({ requiredMiB: o.requiredMemoryMiB, meminfoPath: o.meminfoPath }),
  ];
  if (o.needPacker !== false) {
    checks.unshift(checkTool({ check: 'packer', command: o.packer ?? 'packer', versionArgs: ['version'], minimum: '1.6.0', install: 'install Packer 1.6 or newer (apt-get install packer, or from releases.hashicorp.com)' }));
  }
  const verdicts = await Promise.all(checks);
  const versions: Record<string, string> = {};
  for (const v of verdicts) if (v.version) versions[v.check] = v.version;
  return { ok: verdicts.every((v) => v.ok), verdicts, versions };
}

/** Preflight found problems; the message has one line per failed check: `<check>: <detail> (fix: <fix>)`. */
export class PreflightError extends Error {
  constructor(readonly failures: Verdict[]) {
    super(failures.map((f) => `preflight ${f.check}: ${f.detail}${f.fix ? ` (fix: ${f.fix})` : ''}`).join('\n'));
    this.name = 'PreflightError';
  }
}

/** Runs the preflight and throws a {@link PreflightError} listing every failed check. */
export async function assertPreflight(o: PreflightOptions): Promise<PreflightReport> {
  const report = await runPreflight(o);
  if (!report.ok) throw new PreflightError(report.verdicts.filter((v) => !v.ok));
  return report;
}

/** Reads the preflight inputs shared by packer-build, `labforge build` and `labforge preflight`. */
export function readPreflightOptions(get: InputGetter): PreflightOptions {
  const expectedImageGiB = readInt(get, 'expected-image-gib', 40, { min: 1, max: 16384 });
  return {
    accelerator: readAccelerator(get),
    kvmDevice: readString(get, 'kvm-device', '/dev/kvm'),
    outputDir: readString(get, 'output-dir', '.'),
    // The qcow2 and the OVA (a compressed VMDK, at most about the qcow2's size) side by side.
    requiredDiskBytes: 2 * expectedImageGiB * 2 ** 30,
    requiredMemoryMiB: readInt(get, 'vm-memory-mib', 4096, { min: 128, max: 4 * 1024 * 1024 }) + 512,
  };
}
