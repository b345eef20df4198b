/**
 * Starts and stops a QEMU virtual machine for labforge's warm stage, benchmarks and tests.
 *
 *   const vm = await startVm({ image, accelerator: 'tcg', serialLog: '/tmp/serial.log', snapshot: true,
 *                              extraArgs: ['-kernel', k, '-initrd', i, '-append', 'root=/dev/vda console=ttyS0'] });
 *   await vm.waitForSerial(/hedgehog-lab: ready /, 300_000);
 *   … ssh to 127.0.0.1:vm.sshPort …
 *   await vm.shutdown({ timeoutMs: 60_000 });   // ACPI power button, then SIGKILL of the process group
 *
 * QEMU runs detached in its own process group (so a Ctrl-C of the parent does not reach it half-way and
 * {@link RunningVm.kill} can end QEMU and anything it started), with:
 *   - the serial console (ttyS0) written to `serialLog`;
 *   - user-mode networking with the guest's port 22 forwarded from 127.0.0.1:<free port> (only loopback);
 *   - a QMP socket, used for an ACPI power-down (`system_powerdown`).
 * The base image is never written when `snapshot` (QEMU's -snapshot) or `overlay` (a qcow2 overlay backed
 * by the image) is used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { findFreePort } from './free-port.js';
import { toolOutput } from './tool-output.js';

export type Accelerator = 'kvm' | 'tcg';

export interface StartVmOptions {
  /** The disk image to boot (attached as a virtio disk with discard). */
  image: string;
  /** Format of `image` (default qcow2). */
  imageFormat?: 'qcow2' | 'raw';
  /** Guest memory in MiB (default 2048). */
  memoryMiB?: number;
  /** Virtual CPUs (default 2). */
  cpus?: number;
  /** `kvm` (with `-cpu host`, nested virtualization) or `tcg` (software emulation, no /dev/kvm needed). */
  accelerator: Accelerator;
  /** CPU model (default `host` with kvm, QEMU's default with tcg). */
  cpu?: string;
  /**
   * The guest runs VMs of its own (the Hedgehog VLAB): pass the host CPU, with its vmx/svm flag, through
   * (`-cpu host`). Needs kvm; with tcg it is an error, since TCG cannot give a guest hardware virtualization.
   */
  nested?: boolean;
  /** Machine type (default q35). */
  machine?: string;
  /** File that receives the serial console (ttyS0); created or truncated. */
  serialLog: string;
  /** Boot with QEMU's -snapshot: every write goes to a temporary file that is dropped at exit. */
  snapshot?: boolean;
  /**
   * Boot from a qcow2 overlay at this path, backed by `image`. Created if it does not exist; reused as is
   * if it does (to boot the same machine again). The caller removes it.
   */
  overlay?: string;
  /** More QEMU arguments (e.g. `-kernel … -initrd … -append …` for direct kernel boot). */
  extraArgs?: string[];
  /** Host port forwarded to the guest's SSH port (default: a free port on 127.0.0.1). */
  sshPort?: number;
  /**
   * Where a free host port comes from when `sshPort` is not given (default {@link findFreePort}). QEMU's
   * hostfwd binds the port itself, so another runner on the host can take it in between: a start that fails
   * on a taken port is retried with the next port from here (never one that failed before).
   */
  pickPort?: (exclude: ReadonlySet<number>) => Promise<number>;
  /** Guest port that `sshPort` forwards to (default 22). */
  guestSshPort?: number;
  /** Disk cache mode (default writeback; `unsafe` is fine for throwaway test disks). */
  diskCache?: 'writeback' | 'none' | 'unsafe';
  /** QEMU binary (default qemu-system-x86_64). */
  qemuBinary?: string;
  /** Give up if QEMU has not created its QMP socket after this long (default 30 s). */
  startTimeoutMs?: number;
}

export interface ShutdownOptions {
  /** Wait this long after the ACPI power-down before SIGKILL (default 60 s). */
  timeoutMs?: number;
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running (or exited) QEMU started by {@link startVm}. */
export interface RunningVm {
  /** PID of QEMU, which is also its process group id. */
  readonly pid: number;
  /** Host port on 127.0.0.1 forwarded to the guest's SSH port. */
  readonly sshPort: number;
  readonly serialLog: string;
  /** The QMP control socket. */
  readonly qmpSocket: string;
  /** The overlay booted from, when `overlay` was given. */
  readonly overlay?: string;
  /** The full QEMU command line (argv[0] first), for logs. */
  readonly command: readonly string[];
  /** `Date.now()` when QEMU was spawned. */
  readonly startedAt: number;
  /** Resolves when QEMU exits. */
  readonly exited: Promise<VmExit>;
  /** True until QEMU has exited. */
  isRunning(): boolean;
  /** The serial console so far. */
  serialText(): string;
  /**
   * Resolves with the first match of `pattern` in the serial console; rejects after `timeoutMs`, or as soon
   * as QEMU exits, with the last lines of the console in the message.
   */
  waitForSerial(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** ACPI power-down; if QEMU is still running after the timeout, SIGKILL its process group. */
  shutdown(options?: ShutdownOptions): Promise<{ clean: boolean; exit: VmExit }>;
  /** SIGKILL of QEMU's process group; resolves when QEMU is gone. Safe to call more than once. */
  kill(): Promise<VmExit>;
}

/** Another name for {@link RunningVm}. */
export type VmHandle = RunningVm;

/** QEMU could not be started (bad arguments, missing image, port taken); `stderr` is what QEMU said. */
export class VmStartError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(stderr ? `${message}: ${stderr.trim().split('\n').slice(-5).join(' | ')}` : message);
    this.name = 'VmStartError';
  }
}

/** True when KVM can probably be used: /dev/kvm exists and the CPU advertises vmx or svm. */
export function kvmAvailable(): boolean {
  try {
    if (!existsSync('/dev/kvm')) return false;
    return /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function validate(options: StartVmOptions): void {
  const where = 'startVm';
  if (!options.image) throw new Error(`${where}: image is required (path of the disk image to boot)`);
  if (!existsSync(options.image)) throw new Error(`${where}: image ${options.image} does not exist (build or download it first)`);
  if (options.accelerator !== 'kvm' && options.accelerator !== 'tcg') {
    throw new Error(`${where}: accelerator '${String(options.accelerator)}' must be 'kvm' or 'tcg'`);
  }
  if (options.nested && options.accelerator !== 'kvm') {
    throw new Error(`${where}: nested virtualization needs accelerator 'kvm' (TCG cannot provide vmx/svm to the guest); set nested: false for a TCG boot`);
  }
  if (options.nested && options.cpu && options.cpu !== 'host') throw new Error(`${where}: nested needs cpu 'host', got '${options.cpu}'`);
  if (options.snapshot && options.overlay) throw new Error(`${where}: use either snapshot or overlay, not both`);
  for (const [name, value] of [
    ['memoryMiB', options.memoryMiB],
    ['cpus', options.cpus],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value <= 0)) throw new Error(`${where}: ${name} must be a positive integer, got ${value}`);
  }
  if (!options.serialLog) throw new Error(`${where}: serialLog is required (file for the serial console)`);
}

/** Creates a qcow2 overlay backed by `image` unless `overlay` exists already. */
async function ensureOverlay(image: string, format: string, overlay: string): Promise<void> {
  if (existsSync(overlay)) return;
  const args = ['create', '-q', '-f', 'qcow2', '-F', format, '-b', resolvePath(image), overlay];
  const r = await toolOutput('qemu-img', args);
  if (r.exitCode !== 0) throw new Error(`Command failed: qemu-img ${args.join(' ')}\n${r.stderr}`);
}

function buildArgs(o: StartVmOptions, disk: string, diskFormat: string, sshPort: number, qmpSocket: string): string[] {
  const args = [
    '-name', 'labforge-vm',
    '-no-user-config', '-nodefaults', '-display', 'none',
    '-machine', o.machine ?? 'q35',
    '-accel', o.accelerator,
    '-m', String(o.memoryMiB ?? 2048),
    '-smp', String(o.cpus ?? 2),
    '-serial', `file:${o.serialLog}`,
    '-qmp', `unix:${qmpSocket},server=on,wait=off`,
    '-drive', `file=${disk},if=virtio,format=${diskFormat},discard=unmap,detect-zeroes=unmap,cache=${o.diskCache ?? 'writeback'}`,
    '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${sshPort}-:${o.guestSshPort ?? 22}`,
    '-device', 'virtio-net-pci,netdev=net0',
  ];
  const cpu = o.cpu ?? (o.accelerator === 'kvm' ? 'host' : undefined);
  if (cpu) args.push('-cpu', cpu);
  if (o.snapshot) args.push('-snapshot');
  args.push(...(o.extraArgs ?? []));
  return args;
}

/** Sends QMP commands over the control socket; resolves when every command got its answer. */
export function qmp(socketPath: string, commands: object[], timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buffer = '';
    let answered = -1; // the greeting comes first
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`QMP on ${socketPath} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.end();
      if (err) reject(err);
      else resolve();
    };
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error(`QMP connection to ${socketPath} closed`)));
    sock.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
        if (msg.event) continue;
        if (msg.error) return finish(new Error(`QMP error: ${msg.error.desc ?? JSON.stringify(msg.error)}`));
        answered++;
        if (answered < commands.length) sock.write(`${JSON.stringify(commands[answered])}\n`);
        else return finish();
      }
    });
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Tail of a text, for error messages. */
function tail(text: string, lines = 15): string {
  // Strip ANSI colour codes that systemd puts on the console.
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '').split(/\r?\n/).slice(-lines).join('\n');
}

/**
 * Starts QEMU and resolves once it is running (its QMP socket exists). Rejects with {@link VmStartError} if
 * QEMU exits first; a taken SSH port (a race with another process) is retried with a new port.
 */
export async function startVm(options: StartVmOptions): Promise<RunningVm> {
  validate(options);
  const format = options.imageFormat ?? 'qcow2';
  let disk = options.image;
  let diskFormat: string = format;
  if (options.overlay) {
    await ensureOverlay(options.image, format, options.overlay);
    disk = options.overlay;
    diskFormat = 'qcow2';
  }
  const attempts = options.sshPort ? 1 : PORT_ATTEMPTS;
  const pick = options.pickPort ?? ((exclude: ReadonlySet<number>) => findFreePort({ exclude }));
  const failed = new Set<number>();
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const sshPort = options.sshPort ?? (await pick(failed));
    try {
      return await launch(options, disk, diskFormat, sshPort);
    } catch (e) {
      lastError = e as Error;
      if (!(e instanceof VmStartError && isPortTaken(e.stderr))) throw e;
      failed.add(sshPort);
    }
  }
  throw lastError ?? new Error('startVm failed');
}

/** Starts tried when the forwarded port turns out taken (another runner on the host won the race). */
const PORT_ATTEMPTS = 5;

/** QEMU's words for a hostfwd port something else holds (not any error that merely echoes the -netdev option). */
export function isPortTaken(stderr: string): boolean {
  return /Could not set up host forwarding rule|Address already in use/i.test(stderr);
}

async function launch(o: StartVmOptions, disk: string, diskFormat: string, sshPort: number): Promise<RunningVm> {
  const runDir = mkdtempSync(join(tmpdir(), 'labforge-qemu-'));
  const qmpSocket = join(runDir, 'qmp.sock');
  const stderrPath = join(runDir, 'qemu.stderr');
  const binary = o.qemuBinary ?? 'qemu-system-x86_64';
  const args = buildArgs(o, disk, diskFormat, sshPort, qmpSocket);
  closeSync(openSync(o.serialLog, 'w'));
  const errFd = openSync(stderrPath, 'w');
  let child: ChildProcess;
  try {
    // spawn, not @actions/exec: QEMU runs in its own process group, killed by PID/group on stop or cancel.
    child = spawn(binary, args, { detached: true, stdio: ['ignore', errFd, errFd] });
  } finally {
    closeSync(errFd);
  }
  const startedAt = Date.now();
  const readStderr = () => {
    try {
      return readFileSync(stderrPath, 'utf8');
    } catch {
      return '';
    }
  };
  let exit: VmExit | undefined;
  let spawnError: Error | undefined;
  let stderrAtExit = '';
  const exited = new Promise<VmExit>((resolve) => {
    child.on('exit', (code, signal) => {
      stderrAtExit = readStderr();
      exit = { code, signal };
      resolve(exit);
    });
    child.on('error', (err) => {
      exit = { code: null, signal: null };
      spawnError = err;
      resolve(exit);
    });
  });
  // Remove the control directory once QEMU is gone.
  void exited.then(() => rmSync(runDir, { recursive: true, force: true }));

  // QEMU is up when its QMP monitor answers: the monitor only greets once the machine is initialized, so
  // a failure later in start-up (a taken hostfwd port, a bad device) is not mistaken for a running VM.
  const startTimeout = o.startTimeoutMs ?? 30_000;
  for (;;) {
    if (existsSync(qmpSocket)) {
      try {
        await qmp(qmpSocket, [{ execute: 'qmp_capabilities' }], 5_000);
        break;
      } catch {
        /* not initialized yet, or exiting: look again */
      }
    }
    if (exit) {
      if (spawnError) throw new VmStartError(`cannot run ${binary} (${spawnError.message}); install qemu-system-x86`, '');
      throw new VmStartError(`QEMU exited at start (code ${exit.code ?? exit.signal})`, stderrAtExit);
    }
    if (Date.now() - startedAt > startTimeout) {
      killGroup(child.pid!, 'SIGKILL');
      await exited;
      throw new VmStartError(`QEMU did not start within ${startTimeout} ms`, stderrAtExit);
    }
    await sleep(50);
  }
  const pid = child.pid!;
  let serialOffset = 0;
  let serial = '';
  const readSerial = async (): Promise<string> => {
    try {
      const size = statSync(o.serialLog).size;
      if (size > serialOffset) {
        const fh = await openFile(o.serialLog, 'r');
        try {
          const buf = Buffer.alloc(size - serialOffset);
          const { bytesRead } = await fh.read(buf, 0, buf.length, serialOffset);
          serialOffset += bytesRead;
          serial += buf.subarray(0, bytesRead).toString('utf8');
        } finally {
          await fh.close();
        }
      }
    } catch {
      /* not written yet */
    }
    return serial;
  };

  const kill = async (): Promise<VmExit> => {
    if (!exit) killGroup(pid, 'SIGKILL');
    return exited;
  };

  const vm: RunningVm = {
    pid,
    sshPort,
    serialLog: o.serialLog,
    qmpSocket,
    ...(o.overlay ? { overlay: o.overlay } : {}),
    command: [binary, ...args],
    startedAt,
    exited,
    isRunning: () => exit === undefined,
    serialText: () => {
      try {
        return readFileSync(o.serialLog, 'utf8');
      } catch {
        return serial;
      }
    },
    async waitForSerial(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const text = await readSerial();
        const m = text.match(pattern);
        if (m) return m;
        if (exit) {
          throw new Error(`QEMU exited (code ${exit.code ?? exit.signal}) before the serial console showed ${pattern}; last lines:\n${tail(text)}`);
        }
        if (Date.now() >= deadline) {
          throw new Error(`serial console did not show ${pattern} within ${Math.round(timeoutMs / 1000)} s; last lines:\n${tail(text)}`);
        }
        await sleep(200);
      }
    },
    async shutdown(options: ShutdownOptions = {}) {
      const timeoutMs = options.timeoutMs ?? 60_000;
      if (exit) return { clean: true, exit };
      try {
        await qmp(qmpSocket, [{ execute: 'qmp_capabilities' }, { execute: 'system_powerdown' }]);
      } catch {
        /* QMP gone or stuck: fall through to the timeout and SIGKILL */
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), timeoutMs);
      });
      const winner = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (winner !== 'timeout') return { clean: true, exit: winner };
      return { clean: false, exit: await kill() };
    },
    kill,
  };
  return vm;
}
