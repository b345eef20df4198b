/** ssh-remote against a real OpenSSH sshd on 127.0.0.1 (test/support/sshd.ts) and a TCP port that never speaks SSH. */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSsh, ExecTimeoutError, SshConnectTimeoutError, type RemoteSession } from '../../actions/lib/ssh-remote.js';
import { createTestUser, startSshd, type Sshd, type TestUser } from '../support/sshd.js';

let sshd: Sshd;
let user: TestUser;
let keyDir: string;
let privateKey: string;
let session: RemoteSession;

beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'labforge-ssh-remote-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'id')]);
  privateKey = readFileSync(join(keyDir, 'id'), 'utf8');
  user = await createTestUser({ sudo: 'nopasswd', authorizedKeys: [readFileSync(join(keyDir, 'id.pub'), 'utf8')] });
  sshd = await startSshd({ settings: { PasswordAuthentication: 'no' } });
  session = await connectSsh({ host: sshd.host, port: sshd.port, username: user.name, privateKey, timeoutMs: 20_000 });
});

afterAll(async () => {
  session?.close();
  await sshd?.stop();
  await user?.remove();
  rmSync(keyDir, { recursive: true, force: true });
});

describe('connecting', () => {
  it('logs in with the key and records the host key fingerprint', () => {
    expect(session.hostKeyFingerprint).toBe(sshd.hostKeyFingerprint);
  });

  it('gives each attempt its own timeout when TCP is accepted but SSH never answers (QEMU user-mode net)', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    const failures: string[] = [];
    try {
      const err = await connectSsh({ host: '127.0.0.1', port, username: user.name, privateKey, timeoutMs: 5_000, attemptTimeoutMs: 1_500, retryDelayMs: 200, onAttemptFailed: (_n, e) => failures.push(e.message) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SshConnectTimeoutError);
      expect((err as SshConnectTimeoutError).attempts).toBeGreaterThanOrEqual(2);
      expect(failures[0]).toMatch(/timed out|Timed out/);
    } finally {
      sockets.forEach((s) => s.destroy());
      silent.close();
    }
  });

  it('stops retrying when the server refuses the key', async () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'other')]);
    const err = await connectSsh({ host: sshd.host, port: sshd.port, username: user.name, privateKey: readFileSync(join(keyDir, 'other'), 'utf8'), timeoutMs: 60_000, retryDelayMs: 100 }).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/refused the key for user/);
  });

  it('logs in when the host key is the expected one, and refuses another at once without retrying', async () => {
    const pinned = await connectSsh({ host: sshd.host, port: sshd.port, username: user.name, privateKey, expectedHostKey: sshd.hostKeyFingerprint, timeoutMs: 20_000 });
    pinned.close();
    const wrong = 'SHA256:' + 'A'.repeat(43);
    const failures: string[] = [];
    const started = Date.now();
    const err = await connectSsh({ host: sshd.host, port: sshd.port, username: user.name, privateKey, expectedHostKey: wrong, timeoutMs: 60_000, retryDelayMs: 100, onAttemptFailed: (_n, e) => failures.push(e.message) }).catch((e: unknown) => e as Error);
    expect((err as Error).message).toBe(`SSH to ${user.name}@${sshd.host}:${sshd.port}: the host key of ${sshd.host}:${sshd.port} is ${sshd.hostKeyFingerprint}, not the expected ${wrong}; refusing to log in`);
    expect(failures).toEqual([]);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('running commands', () => {
  it('returns the exit code and streams output line by line', async () => {
    const lines: string[] = [];
    const r = await session.exec('echo one; echo two >&2; printf three; exit 7', { onLine: (l) => lines.push(l) });
    expect(r.code).toBe(7);
    expect(lines.sort()).toEqual(['one', 'three', 'two']);
    expect(r.stdout).toBe('one\nthree');
    expect(r.stderr).toBe('two\n');
  });

  it('passes stdin without putting it on the command line', async () => {
    const r = await session.exec('cat', { stdin: 'secret-value\n' });
    expect(r.stdout).toBe('secret-value\n');
  });

  it('kills a command that runs past its timeout', async () => {
    const t0 = Date.now();
    const err = await session.exec('echo started; sleep 30', { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecTimeoutError);
    expect((err as ExecTimeoutError).output).toContain('started');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('writes a root-owned file through sudo tee, atomically and with its mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'labforge-ssh-write-'));
    const target = join(dir, 'sub dir', 'marker');
    try {
      await session.writeFile(target, 'prewarmed\n', { sudo: true, mode: '0640' });
      expect(readFileSync(target, 'utf8')).toBe('prewarmed\n');
      expect(statSync(target).mode & 0o777).toBe(0o640);
      expect(statSync(target).uid).toBe(0);
      expect(existsSync(`${target}.labforge-tmp`)).toBe(false);
      expect(await session.readFile(target, { sudo: true })).toBe('prewarmed\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
