/**
 * A real OpenSSH server for tests: Debian's `/usr/sbin/sshd -D -e -f CONFIG` on 127.0.0.1, a free port, a
 * throwaway host key and a per-test config; and a throwaway Unix user (useradd + chpasswd) to log in as.
 *
 *   const user = await createTestUser({ sudo: 'nopasswd', authorizedKeys: [pub] });
 *   const sshd = await startSshd({ settings: { PasswordAuthentication: 'no' } });
 *   …  connect to sshd.host:sshd.port as user.name / user.password …
 *   await sshd.stop();      // kills the sshd by PID, removes its directory
 *   await user.remove();    // userdel -r, removes the sudoers drop-in
 *
 * Needs root (the CI machine and the dev machine run tests as root). sshd is started with `UsePAM no`, so
 * password authentication checks /etc/shadow directly: the user's password must be set and the account not
 * locked, which {@link createTestUser} does. Keyboard-interactive needs PAM on Linux, so it is never offered.
 * Keys go to the user's real `~/.ssh/authorized_keys` (sshd's StrictModes rejects paths under /tmp).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** sshd_config keywords and values; the first occurrence of a keyword wins in sshd, so these override the defaults. */
export type SshdSettings = Record<string, string>;

export interface SshdOptions {
  /** Config keywords that replace or add to the test defaults (e.g. `{ PasswordAuthentication: 'no' }`). */
  settings?: SshdSettings;
  /** Raw text appended at the end of the config (for `Match` blocks). */
  extra?: string;
  /** Host key type (default ed25519). `dsa` needs `HostKeyAlgorithms ssh-dss` in settings to be offered. */
  hostKeyType?: 'ed25519' | 'rsa' | 'ecdsa' | 'dsa';
  /** Listen on this port instead of a free one (e.g. to bring a server up on a port a test already waits on). */
  port?: number;
}

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  pid: number;
  /** `SHA256:…` fingerprint of the host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** Directory holding the config, host key and log (removed by stop). */
  dir: string;
  /** sshd's stderr so far (`-e` sends its log there). */
  log: () => string;
  /** Kills the sshd by PID (SIGTERM, then SIGKILL) and removes its directory. Safe to call twice. */
  stop: () => Promise<void>;
}

export interface TestUserOptions {
  /** Password to set (default: a random one). */
  password?: string;
  /** Public keys written to ~/.ssh/authorized_keys. */
  authorizedKeys?: string[];
  /** Sudo rights: passwordless, with password, or none (default none). */
  sudo?: 'nopasswd' | 'password' | 'none';
}

export interface TestUser {
  name: string;
  password: string;
  home: string;
  /** Changes the password (chpasswd, on stdin), e.g. to play cloud-init setting it while sshd already runs. */
  setPassword: (password: string) => Promise<void>;
  /** Deletes the user, its home and its sudoers drop-in. Safe to call twice. */
  remove: () => Promise<void>;
}

const SSHD = '/usr/sbin/sshd';

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Creates a throwaway Unix user with a password, optional authorized keys and optional sudo rights. */
export async function createTestUser(opts: TestUserOptions = {}): Promise<TestUser> {
  const name = `lfssh${randomBytes(3).toString('hex')}`;
  const password = opts.password ?? `Pw-${randomBytes(9).toString('base64url')}`;
  execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', name], { stdio: 'pipe' });
  // chpasswd reads name:password on stdin, so the password is never in a process's argv.
  execFileSync('chpasswd', [], { input: `${name}:${password}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
  const home = `/home/${name}`;
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  if (opts.authorizedKeys && opts.authorizedKeys.length > 0) {
    const sshDir = join(home, '.ssh');
    mkdirSync(sshDir, { mode: 0o700 });
    writeFileSync(join(sshDir, 'authorized_keys'), opts.authorizedKeys.map((k) => k.trim()).join('\n') + '\n', { mode: 0o600 });
    chownSync(sshDir, uid, gid);
    chownSync(join(sshDir, 'authorized_keys'), uid, gid);
  }
  const sudoers = `/etc/sudoers.d/labforge-test-${name}`;
  if (opts.sudo === 'nopasswd' || opts.sudo === 'password') {
    writeFileSync(sudoers, `${name} ALL=(ALL) ${opts.sudo === 'nopasswd' ? 'NOPASSWD: ' : ''}ALL\n`, { mode: 0o440 });
  }
  let removed = false;
  const user: TestUser = {
    name,
    password,
    home,
    setPassword: async (next: string) => {
      execFileSync('chpasswd', [], { input: `${name}:${next}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
      user.password = next;
    },
    remove: async () => {
      if (removed) return;
      removed = true;
      rmSync(sudoers, { force: true });
      try {
        execFileSync('userdel', ['--force', '--remove', name], { stdio: 'pipe' });
      } catch {
        // userdel warns (exit 12) when the mail spool does not exist; the user is gone all the same.
      }
    },
  };
  return user;
}

function sshdConfig(dir: string, port: number, hostKey: string, opts: SshdOptions): string {
  const defaults: SshdSettings = {
    Port: String(port),
    ListenAddress: '127.0.0.1',
    HostKey: hostKey,
    PidFile: 'none',
    UsePAM: 'no',
    PasswordAuthentication: 'yes',
    PubkeyAuthentication: 'yes',
    KbdInteractiveAuthentication: 'no',
    PermitRootLogin: 'no',
    AuthorizedKeysFile: '.ssh/authorized_keys',
    LogLevel: 'VERBOSE',
    PrintMotd: 'no',
    // a wrong password must fail fast, not after sshd's default penalty delay for the next attempt
    MaxAuthTries: '10',
  };
  const merged = { ...defaults, ...(opts.settings ?? {}) };
  const lines = Object.entries(merged).map(([k, v]) => `${k} ${v}`);
  return `# labforge test sshd (${dir})\n${lines.join('\n')}\n${opts.extra ?? ''}\n`;
}

/** Starts a real sshd on 127.0.0.1 and resolves once it listens. */
export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation directory
  const dir = mkdtempSync(join(tmpdir(), 'labforge-sshd-'));
  const type = opts.hostKeyType ?? 'ed25519';
  const hostKey = join(dir, `ssh_host_${type}_key`);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'labforge-test-host', '-f', hostKey], { stdio: 'pipe' });
  const hostKeyFingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`], { encoding: 'utf8' }).split(' ')[1] ?? '';

  let lastError = '';
  for (let attempt = 0; attempt < (opts.port ? 1 : 3); attempt++) {
    const port = opts.port ?? (await freeLocalPort());
    const configPath = join(dir, 'sshd_config');
    writeFileSync(configPath, sshdConfig(dir, port, hostKey, opts));
    execFileSync(SSHD, ['-t', '-f', configPath], { stdio: 'pipe' }); // a bad config fails here with sshd's message
    const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const listening = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      const check = () => {
        if (log.includes(`Server listening on 127.0.0.1 port ${port}`)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      child.stderr?.on('data', check);
      child.on('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
      check();
    });
    const pid = child.pid;
    if (listening && pid !== undefined) {
      let stopped = false;
      return {
        host: '127.0.0.1',
        port,
        pid,
        hostKeyFingerprint,
        dir,
        log: () => log,
        stop: async () => {
          if (stopped) return;
          stopped = true;
          await killByPid(child, pid);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    lastError = log;
    if (pid !== undefined) await killByPid(child, pid);
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`sshd did not start on 127.0.0.1; its log:\n${lastError}`);
}

async function killByPid(child: ChildProcess, pid: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 3000);
  await exited;
  clearTimeout(timer);
}

export interface ClientKey {
  /** Path of the private key file (mode 0600). */
  path: string;
  /** The private key text (OpenSSH format). */
  privateKey: string;
  /** The public key line for authorized_keys. */
  publicKey: string;
}

/** Generates an unencrypted client key pair with ssh-keygen in `dir`. */
export function generateClientKey(dir: string, type: 'ed25519' | 'rsa' | 'ecdsa' = 'ed25519'): ClientKey {
  const path = join(dir, `id_${type}_${randomBytes(3).toString('hex')}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'labforge-test-client', '-f', path], { stdio: 'pipe' });
  return { path, privateKey: readFileSync(path, 'utf8'), publicKey: readFileSync(`${path}.pub`, 'utf8').trim() };
}
