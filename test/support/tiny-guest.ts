/**
 * The tiny real guest for tests: the demo appliance's base image (packer/demo-lab/build-base.sh: Debian
 * bookworm with systemd, sshd, cloud-init and the hedgehog-lab orchestrator with the test-lab driver),
 * prepared once for tests that exercise the orchestrator and the warm rather than cloud-init: a user `lab`
 * with a test key and passwordless sudo, authorized by a real NoCloud seed on one prep boot, after which
 * cloud-init is disabled in this test copy (the product image keeps it; the pipeline e2e proves that path).
 *
 *   const guest = await ensureTinyGuest();                       // prepared once per base image (cached)
 *   const vm = await bootTinyGuest({ guest, overlay: '/tmp/x.qcow2' });
 *   try {
 *     const r = await vm.exec('sudo hedgehog-lab status --json');
 *   } finally {
 *     await vm.stop();                                         // always kills QEMU by PID
 *   }
 *
 * Boots under TCG by direct kernel boot; the cached image is never written (`-snapshot` unless an
 * overlay is given).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSeed, removeSeed, seedQemuArgs } from '../../actions/lib/cloud-init-seed.js';
import { kvmAvailable, startVm, type RunningVm } from '../../actions/lib/qemu-vm.js';
import { connectSsh, type ExecOptions, type ExecResult, type RemoteSession } from '../../actions/lib/ssh-remote.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const baseScript = join(repoRoot, 'packer/demo-lab/build-base.sh');
/** Bump when the preparation below changes: the prepared copy is cached under this version. */
const PREP_VERSION = 1;
const PREP_SETTINGS = 'READY_INTERVAL=1';

/** The demo appliance's base image (build-base.sh's JSON line). */
export interface DemoBaseImage {
  hash: string;
  dir: string;
  image: string;
  kernel: string;
  initrd: string;
  kernelCmdline: string;
}

/** guest.json of the prepared test copy. */
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
  builtAt: string;
}

export interface EnsureTinyGuestOptions {
  /** Cache root (default: $LABFORGE_CACHE_DIR or /var/cache/labforge). */
  cacheDir?: string;
  /** Progress lines (stderr of build-base.sh). */
  onLog?: (line: string) => void;
  /** Give up after this long (default 20 minutes: a cold base build runs mmdebstrap). */
  timeoutMs?: number;
}

/** Builds (or reuses) the demo appliance's base image. */
export function ensureDemoBase(options: EnsureTinyGuestOptions = {}): Promise<DemoBaseImage> {
  const env = { ...process.env, ...(options.cacheDir ? { LABFORGE_CACHE_DIR: options.cacheDir } : {}) };
  return new Promise((resolvePromise, reject) => {
    const child = execFile(baseScript, [], { env, timeout: options.timeoutMs ?? 1_200_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`packer/demo-lab/build-base.sh failed (${err.message.split('\n')[0]}):\n${stderr.split('\n').slice(-20).join('\n')}`));
      try {
        resolvePromise(JSON.parse(stdout.trim().split('\n').pop() ?? '') as DemoBaseImage);
      } catch (e) {
        reject(new Error(`build-base.sh did not end with its JSON line: ${(e as Error).message}`));
      }
    });
    let partial = '';
    child.stderr?.on('data', (d: Buffer) => {
      const lines = (partial + d.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.onLog?.(line);
    });
  });
}

/** Prepares the test copy of the base image unless the cache has it; returns its guest.json. */
export async function ensureTinyGuest(options: EnsureTinyGuestOptions = {}): Promise<TinyGuest> {
  const base = await ensureDemoBase(options);
  const cacheRoot = options.cacheDir ?? process.env.LABFORGE_CACHE_DIR ?? '/var/cache/labforge';
  const dir = join(cacheRoot, 'demo-lab-test', `${base.hash}-prep${PREP_VERSION}`);
  const jsonPath = join(dir, 'guest.json');
  if (existsSync(jsonPath)) return JSON.parse(readFileSync(jsonPath, 'utf8')) as TinyGuest;

  mkdirSync(dirname(dir), { recursive: true });
  const work = mkdtempSync(join(dirname(dir), '.prep-'));
  const seedParent = mkdtempSync(join(tmpdir(), 'labforge-prep-'));
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `labforge-test-guest-${base.hash}`, '-f', join(work, 'id_ed25519')]);
    const privateKey = readFileSync(join(work, 'id_ed25519'), 'utf8');
    const seed = await createSeed({ user: 'lab', privateKey, userPassword: 'locked', parentDir: seedParent, instanceId: `labforge-test-prep-${base.hash}` });
    const overlay = join(work, 'prep.qcow2');
    const vm = await startVm({
      image: base.image,
      overlay,
      accelerator: kvmAvailable() ? 'kvm' : 'tcg',
      memoryMiB: 1024,
      cpus: 2,
      serialLog: join(work, 'serial.log'),
      // The orchestrator's boot service stays off: this copy must be a pristine standard image.
      extraArgs: ['-kernel', base.kernel, '-initrd', base.initrd, '-append', `${base.kernelCmdline} hedgehog-lab.skip`, ...seedQemuArgs(seed)],
    });
    try {
      const session = await connectSsh({ host: '127.0.0.1', port: vm.sshPort, username: 'lab', privateKey, timeoutMs: 600_000, attemptTimeoutMs: 10_000, retryDelayMs: 1_000, refusedKeyAttempts: Number.POSITIVE_INFINITY });
      try {
        const r = await session.exec(
          `set -e; cloud-init status --wait >/dev/null || true; sudo -n touch /etc/cloud/cloud-init.disabled; echo '${PREP_SETTINGS}' | sudo -n tee -a /etc/hedgehog-lab/lab.conf >/dev/null; sync`,
          { timeoutMs: 300_000 },
        );
        if (r.code !== 0) throw new Error(`preparing the test guest failed: ${r.stderr}`);
        session.exec('sudo -n systemctl poweroff', { timeoutMs: 10_000 }).catch(() => undefined);
      } finally {
        session.close();
      }
      await vm.shutdown({ timeoutMs: 120_000 });
    } finally {
      await vm.kill();
      await removeSeed(seed);
    }
    execFileSync('qemu-img', ['convert', '-O', 'qcow2', overlay, join(work, 'guest.qcow2')]);
    rmSync(overlay);
    chmodSync(join(work, 'guest.qcow2'), 0o444);
    const guest: TinyGuest = {
      hash: base.hash,
      dir,
      image: join(dir, 'guest.qcow2'),
      imageFormat: 'qcow2',
      kernel: base.kernel,
      initrd: base.initrd,
      kernelCmdline: base.kernelCmdline,
      qemuArgs: ['-kernel', base.kernel, '-initrd', base.initrd, '-append', base.kernelCmdline],
      user: 'lab',
      privateKey: join(dir, 'id_ed25519'),
      publicKey: join(dir, 'id_ed25519.pub'),
      buildType: 'standard',
      driver: 'test-lab',
      builtAt: new Date().toISOString(),
    };
    writeFileSync(join(work, 'guest.json'), JSON.stringify(guest, null, 2));
    // Another test process (npm test runs two jest lanes) may have finished the same copy meanwhile: use its.
    if (existsSync(jsonPath)) return JSON.parse(readFileSync(jsonPath, 'utf8')) as TinyGuest;
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
    return guest;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(seedParent, { recursive: true, force: true });
  }
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
