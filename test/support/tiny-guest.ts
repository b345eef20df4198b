/**
 * The tiny real guest for tests: a Debian bookworm VM with systemd, sshd, the hedgehog-lab orchestrator
 * (test-lab driver) and a user `lab` with a per-build test key and passwordless sudo.
 *
 *   const guest = await ensureTinyGuest();                       // builds once per input hash (cached)
 *   const vm = await bootTinyGuest({ guest, overlay: '/tmp/x.qcow2' });
 *   try {
 *     const r = await vm.exec('sudo hedgehog-lab status --json');
 *   } finally {
 *     await vm.stop();                                         // always kills QEMU by PID
 *   }
 *
 * Boots under TCG by direct kernel boot; the cached base image is never written (`-snapshot` unless an
 * overlay is given). Needs root (the guest build uses debootstrap and chroot).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kvmAvailable, startVm, type RunningVm } from '../../actions/lib/qemu-vm.js';
import { connectSsh, type ExecOptions, type ExecResult, type RemoteSession } from '../../actions/lib/ssh-remote.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const buildScript = join(repoRoot, 'test/guest/build-guest.sh');

/** guest.json, as written by test/guest/build-guest.sh. */
export interface TinyGuest {
  hash: string;
  dir: string;
  image: string;
  imageFormat: 'qcow2';
  kernel: string;
  initrd: string;
  kernelCmdline: string;
  /** `-kernel … -initrd … -append …` for direct kernel boot. */
  qemuArgs: string[];
  user: string;
  privateKey: string;
  publicKey: string;
  buildType: 'standard';
  driver: 'test-lab';
  debianSuite: string;
  builtAt: string;
}

export interface EnsureTinyGuestOptions {
  /** Cache root (default: $LABFORGE_CACHE_DIR or /var/cache/labforge). */
  cacheDir?: string;
  /** Rebuild even if cached. */
  force?: boolean;
  /** Build log lines (stderr of build-guest.sh). */
  onLog?: (line: string) => void;
  /** Give up after this long (default 15 minutes: a cold build runs debootstrap). */
  timeoutMs?: number;
}

/** Builds the tiny guest unless the cache has it for the current inputs; returns its guest.json. */
export function ensureTinyGuest(options: EnsureTinyGuestOptions = {}): Promise<TinyGuest> {
  const env = { ...process.env, ...(options.cacheDir ? { LABFORGE_CACHE_DIR: options.cacheDir } : {}) };
  const args = options.force ? ['--force'] : [];
  return new Promise((resolvePromise, reject) => {
    const child = execFile(buildScript, args, { env, timeout: options.timeoutMs ?? 900_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`test/guest/build-guest.sh failed (${err.message.split('\n')[0]}):\n${stderr.split('\n').slice(-20).join('\n')}`));
        return;
      }
      const dir = stdout.trim().split('\n').pop() ?? '';
      try {
        resolvePromise(JSON.parse(readFileSync(join(dir, 'guest.json'), 'utf8')) as TinyGuest);
      } catch (e) {
        reject(new Error(`build-guest.sh printed '${dir}', which has no readable guest.json: ${(e as Error).message}`));
      }
    });
    if (options.onLog) {
      let partial = '';
      child.stderr?.on('data', (d: Buffer) => {
        const lines = (partial + d.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) options.onLog!(line);
      });
    }
  });
}

export interface BootTinyGuestOptions {
  /** The guest to boot (default: {@link ensureTinyGuest}()). */
  guest?: TinyGuest;
  /** Boot from this qcow2 overlay (created if absent, kept afterwards) instead of a throwaway -snapshot. */
  overlay?: string;
  /** Words appended to the kernel command line (e.g. `hedgehog-lab.skip`). */
  kernelArgs?: string[];
  /** Serial console file (default: a temporary file, removed by stop()). */
  serialLog?: string;
  /** Default 1024. */
  memoryMiB?: number;
  /** Default 2. */
  cpus?: number;
  /** Wait for an SSH login (default true). */
  waitForSsh?: boolean;
  /** How long to wait for SSH (default 4 minutes: TCG boots take 20–40 s, more on a busy machine). */
  sshTimeoutMs?: number;
  /** Progress lines (SSH attempts). */
  onLog?: (line: string) => void;
}

export interface TinyGuestVm {
  guest: TinyGuest;
  vm: RunningVm;
  sshPort: number;
  /** Milliseconds from QEMU's start to the first SSH login (when waited for). */
  sshReadyMs?: number;
  /** The SSH session as `lab` (when waited for; reconnect with {@link TinyGuestVm.connect}). */
  session?: RemoteSession;
  /** Logs in (again) over SSH, waiting up to `timeoutMs`. */
  connect(timeoutMs?: number): Promise<RemoteSession>;
  /** Runs a command as `lab` over the current session. */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /** Waits for a line on the serial console. */
  waitForSerial(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Clean power-off (systemctl poweroff over SSH, ACPI as fallback), SIGKILL after `timeoutMs`. */
  powerOff(timeoutMs?: number): Promise<{ clean: boolean }>;
  /** Kills QEMU by PID (if still running), closes SSH, removes temporary files. Safe to call twice. */
  stop(): Promise<void>;
}

/** Boots the tiny guest under TCG (KVM if usable) and, by default, waits until SSH accepts a real login. */
export async function bootTinyGuest(options: BootTinyGuestOptions = {}): Promise<TinyGuestVm> {
  const guest = options.guest ?? (await ensureTinyGuest());
  const tmp = mkdtempSync(join(tmpdir(), 'labforge-tiny-guest-'));
  const serialLog = options.serialLog ?? join(tmp, 'serial.log');
  const cmdline = [guest.kernelCmdline, ...(options.kernelArgs ?? [])].join(' ');
  let vm: RunningVm;
  try {
    vm = await startVm({
      image: guest.image,
      imageFormat: 'qcow2',
      accelerator: kvmAvailable() ? 'kvm' : 'tcg',
      memoryMiB: options.memoryMiB ?? 1024,
      cpus: options.cpus ?? 2,
      serialLog,
      ...(options.overlay ? { overlay: options.overlay } : { snapshot: true }),
      extraArgs: ['-kernel', guest.kernel, '-initrd', guest.initrd, '-append', cmdline],
    });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const privateKey = readFileSync(guest.privateKey);
  let session: RemoteSession | undefined;
  let stopped = false;

  const handle: TinyGuestVm = {
    guest,
    vm,
    sshPort: vm.sshPort,
    async connect(timeoutMs = options.sshTimeoutMs ?? 240_000) {
      session?.close();
      const abort = new AbortController();
      void vm.exited.then(() => abort.abort(new Error(`QEMU exited while waiting for SSH; serial console:\n${vm.serialText().split('\n').slice(-15).join('\n')}`)));
      session = await connectSsh({
        host: '127.0.0.1',
        port: vm.sshPort,
        username: guest.user,
        privateKey,
        timeoutMs,
        attemptTimeoutMs: 10_000,
        retryDelayMs: 1_000,
        signal: abort.signal,
        onAttemptFailed: (n, err, ms) => options.onLog?.(`ssh attempt ${n} failed after ${Math.round(ms / 1000)} s: ${err.message}`),
      });
      handle.session = session;
      return session;
    },
    async exec(command, execOptions) {
      if (!session) throw new Error('not connected: call connect() first');
      return session.exec(command, execOptions);
    },
    waitForSerial: (pattern, timeoutMs) => vm.waitForSerial(pattern, timeoutMs),
    async powerOff(timeoutMs = 60_000) {
      if (session) {
        const closed = session.closed();
        session.exec('sudo -n systemctl poweroff', { timeoutMs: 10_000 }).catch(() => undefined);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([closed, vm.exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
        clearTimeout(timer);
        session.close();
        session = undefined;
      }
      const { clean } = await vm.shutdown({ timeoutMs });
      return { clean };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      session?.close();
      await vm.kill();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
  if (options.waitForSsh ?? true) {
    try {
      await handle.connect();
      handle.sshReadyMs = Date.now() - vm.startedAt;
    } catch (e) {
      await handle.stop();
      throw e;
    }
  }
  return handle;
}
