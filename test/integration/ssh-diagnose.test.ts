/**
 * Every cause ssh-diagnose can name, produced by a real OpenSSH sshd (Debian's /usr/sbin/sshd) configured to
 * fail that way, or by a real listener that misbehaves the way such a port does (test/support/odd-listeners.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diagnoseSsh, formatDiagnosis, diagnosisMarkdown, type SshDiagnoseOptions, type SshDiagnosis } from '../../actions/lib/ssh-diagnose.js';
import { createTestUser, generateClientKey, startSshd, type ClientKey, type SshdOptions, type TestUser } from '../support/sshd.js';
import { bannerOnlyListener, closingListener, fullBacklogListener, httpListener, silentListener, type OddListener } from '../support/odd-listeners.js';

let dir: string;
let user: TestUser; // passwordless sudo, ed25519 + rsa keys authorized
let plainUser: TestUser; // sudo only with a password
let ed: ClientKey;
let rsa: ClientKey;
let stranger: ClientKey; // never authorized

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-ssh-diagnose-'));
  ed = generateClientKey(dir, 'ed25519');
  rsa = generateClientKey(dir, 'rsa');
  stranger = generateClientKey(dir, 'ed25519');
  user = await createTestUser({ authorizedKeys: [ed.publicKey, rsa.publicKey], sudo: 'nopasswd' });
  plainUser = await createTestUser({ sudo: 'password' });
});

afterAll(async () => {
  await user?.remove();
  await plainUser?.remove();
  rmSync(dir, { recursive: true, force: true });
});

function base(port: number, over: Partial<SshDiagnoseOptions> = {}): SshDiagnoseOptions {
  return { host: '127.0.0.1', port, username: user.name, timeoutSeconds: 5, waitSeconds: 0, command: 'true', checkSudo: true, ...over };
}

/** Diagnoses against a fresh sshd with these settings, stops it, and checks no password leaked. */
async function withSshd(sshdOpts: SshdOptions, over: (port: number) => Partial<SshDiagnoseOptions>): Promise<SshDiagnosis> {
  const sshd = await startSshd(sshdOpts);
  try {
    const d = await diagnoseSsh(base(sshd.port, over(sshd.port)));
    expectNoSecrets(d);
    return d;
  } finally {
    await sshd.stop();
  }
}

function expectNoSecrets(d: SshDiagnosis): void {
  for (const text of [JSON.stringify(d), formatDiagnosis(d), diagnosisMarkdown(d)]) {
    expect(text).not.toContain(user.password);
    expect(text).not.toContain(plainUser.password);
    expect(text).not.toContain(ed.privateKey.split('\n')[1]);
  }
}

async function withListener(start: () => Promise<OddListener>, over: Partial<SshDiagnoseOptions> = {}): Promise<SshDiagnosis> {
  const l = await start();
  try {
    return await diagnoseSsh(base(l.port, { password: user.password, ...over }));
  } finally {
    await l.close();
  }
}

describe('connection-level causes', () => {
  it('names a refused port', async () => {
    const sshd = await startSshd();
    const port = sshd.port;
    await sshd.stop(); // the port was just in use and is free now: nothing listens
    const d = await diagnoseSsh(base(port, { password: user.password }));
    expect(d.cause).toBe('connection-refused');
    expect(d.probes).toEqual([expect.objectContaining({ name: 'tcp', ok: false })]);
    expect(d.remediation.join(' ')).toMatch(/host_port_min/);
  });

  it('names a connect timeout when SYNs go unanswered', async () => {
    const d = await withListener(fullBacklogListener, { timeoutSeconds: 1 });
    expect(d.cause).toBe('connect-timeout');
    expect(d.durationMs).toBeLessThan(2500);
  });

  it('names a listener that accepts TCP and never sends a banner', async () => {
    const d = await withListener(silentListener, { timeoutSeconds: 1 });
    expect(d.cause).toBe('banner-timeout');
    expect(d.detail).toMatch(/accepted the TCP connection but sent nothing/);
    expect(d.remediation.join(' ')).toMatch(/accelerator = "kvm"/);
  });

  it('names a port that accepts and closes at once (a QEMU forward with no sshd behind it)', async () => {
    const d = await withListener(closingListener);
    expect(d.cause).toBe('connection-closed');
  });

  it('names an HTTP server on the SSH port', async () => {
    const d = await withListener(httpListener);
    expect(d.cause).toBe('not-ssh');
    expect(d.detail).toMatch(/speaks HTTP/);
    expect(d.detail).toMatch(/HTTP\/1\.1 400/);
  });

  it('names a server that sends a banner and then stalls (stand-in for a wedged sshd)', async () => {
    const d = await withListener(bannerOnlyListener, { timeoutSeconds: 1 });
    expect(d.cause).toBe('handshake-timeout');
    expect(d.server?.banner).toBe('SSH-2.0-OpenSSH_9.2p1 wedged-stand-in');
  });

  it('names an unreachable host (Linux refuses TCP to a multicast address with ENETUNREACH, without sending a packet)', async () => {
    const d = await diagnoseSsh({ ...base(22), host: '224.0.0.1', password: 'x' });
    expect(d.cause).toBe('host-unreachable');
    expect(d.detail).toMatch(/ENETUNREACH/);
  });

  it('names a host name that does not resolve', async () => {
    const d = await diagnoseSsh({ ...base(22), host: 'no-such-host.invalid', password: 'x' });
    expect(d.cause).toBe('host-not-found');
  });

  it('waits for a server that comes up later, recording the timeline', async () => {
    const sshd = await startSshd();
    const port = sshd.port;
    await sshd.stop();
    const late = new Promise<Awaited<ReturnType<typeof startSshd>>>((resolve) => setTimeout(() => resolve(startOnPort(port)), 1500));
    const progress: string[] = [];
    const d = await diagnoseSsh(base(port, { password: user.password, waitSeconds: 10, onProgress: (l) => progress.push(l) }));
    await (await late).stop();
    expect(d.cause).toBe('ok');
    expect(d.timeline).toHaveLength(1); // consecutive refusals are merged into one entry
    expect(d.timeline[0]).toMatchObject({ attempt: 1, cause: 'connection-refused' });
    expect(d.attempts).toBe(1 + (d.timeline[0]?.repeated ?? 0) + 1);
    expect(progress[0]).toMatch(/attempt 1 at .*connection-refused; retrying/);
  });

  it('keeps waiting through a refused password until cloud-init would have set it (as Packer retries)', async () => {
    const late = await createTestUser();
    const sshd = await startSshd();
    const wanted = `${late.password}-set-by-cloud-init`;
    try {
      const setLater = new Promise<void>((resolve) => setTimeout(() => void late.setPassword(wanted).then(resolve), 1500));
      const d = await diagnoseSsh(base(sshd.port, { username: late.name, password: wanted, checkSudo: false, waitSeconds: 15 }));
      await setLater;
      expect(d.cause).toBe('ok');
      expect(d.timeline).toEqual([expect.objectContaining({ attempt: 1, cause: 'auth-rejected' })]);
      expect(JSON.stringify(d)).not.toContain(wanted);
    } finally {
      await sshd.stop();
      await late.remove();
    }
  });

  it('gives up when wait-seconds runs out', async () => {
    const l = await closingListener();
    try {
      const d = await diagnoseSsh(base(l.port, { password: user.password, waitSeconds: 2 }));
      expect(d.cause).toBe('connection-closed');
      expect(d.attempts).toBeGreaterThanOrEqual(2);
      expect(d.durationMs).toBeGreaterThanOrEqual(2000);
      expect(d.durationMs).toBeLessThan(4500);
    } finally {
      await l.close();
    }
  });
});

/** Starts an sshd on a given port (for the wait test). */
async function startOnPort(port: number) {
  return startSshd({ port });
}

describe('key exchange and host key', () => {
  it('names a key-exchange mismatch and shows both offers', async () => {
    const d = await withSshd({ settings: { KexAlgorithms: 'diffie-hellman-group14-sha1' } }, () => ({ password: user.password }));
    expect(d.cause).toBe('kex-mismatch');
    expect(d.algorithms?.mismatch).toBe('kex');
    expect(d.algorithms?.server.kex).toContain('diffie-hellman-group14-sha1');
    expect(d.algorithms?.client.kex).toContain('curve25519-sha256');
    expect(d.detail).toMatch(/no key exchange algorithm in common: client offers .*curve25519-sha256.*; server offers diffie-hellman-group14-sha1/);
  });

  it('names a host-key algorithm mismatch (server offers only ssh-dss)', async () => {
    const d = await withSshd({ hostKeyType: 'dsa', settings: { HostKeyAlgorithms: 'ssh-dss' } }, () => ({ password: user.password }));
    expect(d.cause).toBe('kex-mismatch');
    expect(d.algorithms?.mismatch).toBe('hostKey');
    expect(d.detail).toMatch(/no host key algorithm in common.*server offers ssh-dss/);
    expect(d.warnings.join(' ')).toMatch(/legacy SHA-1 host key/);
  });

  it('names a host key that is not the expected one', async () => {
    const other = await startSshd();
    const expected = other.hostKeyFingerprint;
    await other.stop();
    const d = await withSshd({}, () => ({ password: user.password, expectedHostKey: expected }));
    expect(d.cause).toBe('host-key-mismatch');
    expect(d.hostKey?.expected).toBe(expected);
    expect(d.hostKey?.matches).toBe(false);
    expect(d.probes.find((p) => p.name === 'host-key')?.ok).toBe(false);
  });

  it('accepts the expected host key', async () => {
    const sshd = await startSshd();
    try {
      const d = await diagnoseSsh(base(sshd.port, { password: user.password, expectedHostKey: sshd.hostKeyFingerprint }));
      expect(d.cause).toBe('ok');
      expect(d.hostKey).toMatchObject({ sha256: sshd.hostKeyFingerprint, matches: true, algorithm: 'ssh-ed25519' });
    } finally {
      await sshd.stop();
    }
  });
});

describe('authentication', () => {
  it('names PasswordAuthentication no when a password is given', async () => {
    const d = await withSshd({ settings: { PasswordAuthentication: 'no' } }, () => ({ password: user.password }));
    expect(d.cause).toBe('password-auth-disabled');
    expect(d.authMethods?.allowed).toEqual(['publickey']);
    expect(d.remediation[0]).toMatch(/ssh_pwauth: true/);
  });

  it('names PubkeyAuthentication no when a key is given', async () => {
    const d = await withSshd({ settings: { PubkeyAuthentication: 'no' } }, () => ({ privateKey: ed.privateKey }));
    expect(d.cause).toBe('pubkey-auth-disabled');
    expect(d.authMethods?.allowed).toEqual(['password']);
  });

  it('names a wrong password, and says it cannot be told from an unknown user', async () => {
    const d = await withSshd({}, () => ({ password: `${user.password}-wrong` }));
    expect(d.cause).toBe('auth-rejected');
    expect(d.detail).toMatch(/cannot be told apart/);
    expect(d.remediation.join(' ')).toMatch(/openssl passwd -6/);
    expect(JSON.stringify(d)).not.toContain(`${user.password}-wrong`);
  });

  it('names an unknown user the same way', async () => {
    const d = await withSshd({}, () => ({ username: 'no-such-user-lf', password: user.password }));
    expect(d.cause).toBe('auth-rejected');
    expect(d.authMethods?.attempts.find((a) => a.method === 'password')?.result).toBe('rejected');
  });

  it('names a key that is not authorized', async () => {
    const d = await withSshd({}, () => ({ privateKey: stranger.privateKey }));
    expect(d.cause).toBe('auth-rejected');
    expect(d.detail).toMatch(/refused the ssh-ed25519 key SHA256:/);
  });

  it('names an RSA key whose client signs with ssh-rsa (SHA-1) against PubkeyAcceptedAlgorithms without ssh-rsa', async () => {
    const d = await withSshd({ settings: { PubkeyAcceptedAlgorithms: 'ssh-ed25519,rsa-sha2-512,rsa-sha2-256' } }, () => ({
      privateKey: rsa.privateKey,
      pubkeyAlgorithms: ['ssh-rsa'],
    }));
    expect(d.cause).toBe('key-algorithm-rejected');
    expect(d.authMethods?.rsaAlgorithms).toEqual({ 'ssh-rsa': 'rejected', 'rsa-sha2-512': 'accepted', 'rsa-sha2-256': 'accepted' });
    expect(d.detail).toMatch(/authorized .* refuses signatures with ssh-rsa/);
    expect(d.remediation[0]).toMatch(/ed25519/);
  });

  it('logs in with an RSA key but warns that SHA-1-only clients will fail', async () => {
    const d = await withSshd({}, () => ({ privateKey: rsa.privateKey }));
    expect(d.cause).toBe('ok');
    expect(d.warnings.join(' ')).toMatch(/x\/crypto\/ssh before 2022/);
  });

  it('logs in with keyboard-interactive (PAM) when password authentication is off', async () => {
    const d = await withSshd({ settings: { UsePAM: 'yes', KbdInteractiveAuthentication: 'yes', PasswordAuthentication: 'no' } }, () => ({ password: user.password }));
    expect(d.cause).toBe('ok');
    expect(d.authMethods?.allowed).toEqual(['publickey', 'keyboard-interactive']);
    expect(d.authMethods?.attempts.map((a) => [a.method, a.result])).toEqual([
      ['none', 'rejected'],
      ['keyboard-interactive', 'accepted'],
    ]);
  });

  it('names missing credentials and lists what the server allows', async () => {
    const d = await withSshd({}, () => ({}));
    expect(d.cause).toBe('no-credentials');
    expect(d.authMethods?.allowed).toEqual(['publickey', 'password']);
  });
});

describe('after login', () => {
  it('names a ForceCommand that fails', async () => {
    const d = await withSshd({ settings: { ForceCommand: '/bin/false' } }, () => ({ password: user.password }));
    expect(d.cause).toBe('command-failed');
    expect(d.command?.exitCode).toBe(1);
    expect(d.probes.find((p) => p.name === 'auth password')?.ok).toBe(true);
  });

  it('names a user without passwordless sudo', async () => {
    const d = await withSshd({}, () => ({ username: plainUser.name, password: plainUser.password }));
    expect(d.cause).toBe('sudo-requires-password');
    expect(d.sudo?.stderr).toMatch(/password is required/);
    expect(d.remediation[0]).toMatch(/NOPASSWD/);
  });

  it('names sudo that cannot run at all (not on the PATH sshd gives the session)', async () => {
    const d = await withSshd({ settings: { SetEnv: 'PATH=/nonexistent' } }, () => ({ password: user.password }));
    expect(d.cause).toBe('sudo-failed');
    expect(d.sudo?.exitCode).toBe(127);
    expect(d.sudo?.stderr).toMatch(/sudo: (command )?not found/);
    expect(d.detail).toMatch(/cannot run sudo: sudo -n true exited 127/);
  });

  it('is ok with a password: every layer probed and timed', async () => {
    const d = await withSshd({}, () => ({ password: user.password }));
    expect(d.cause).toBe('ok');
    expect(d.ok).toBe(true);
    expect(d.probes.map((p) => p.name)).toEqual(['tcp', 'banner', 'kex', 'host-key', 'auth none', 'auth password', 'command', 'sudo -n true']);
    expect(d.probes.every((p) => p.ok)).toBe(true);
    expect(d.server?.software).toMatch(/^OpenSSH_/);
    expect(d.algorithms?.negotiated?.kex).toBeTruthy();
    expect(d.durationMs).toBeLessThan(2000);
  });

  it('is ok with an ed25519 key', async () => {
    const d = await withSshd({ settings: { PasswordAuthentication: 'no' } }, () => ({ privateKey: ed.privateKey }));
    expect(d.cause).toBe('ok');
    expect(d.target.privateKey?.type).toBe('ssh-ed25519');
    expect(d.authMethods?.attempts.find((a) => a.method === 'publickey')).toMatchObject({ result: 'accepted', keyAlgorithm: 'ssh-ed25519' });
  });
});

describe('serial console evidence', () => {
  /** The report from its serial-log section to the end (the last line is empty: the report ends with a newline). */
  const serialSection = (text: string): string[] => {
    const lines = text.split('\n').slice(0, -1);
    const at = lines.findIndex((l) => l.startsWith('Serial log'));
    return at < 0 ? [] : lines.slice(at);
  };

  it('quotes the lines of the guest serial log that explain the failure', async () => {
    const log = join(dir, 'serial.log');
    writeFileSync(
      log,
      [
        '[    0.000000] Linux version 6.1.0-18-amd64',
        '[  OK  ] Started \x1b[0;1;39mOpenBSD Secure Shell server\x1b[0m.',
        'cloud-init[512]: 2024-05-01 10:00:01,000 - util.py[WARNING]: Failed loading yaml blob. Invalid format at line 3',
        'dhclient[300]: No DHCPOFFERS received.',
        'Ubuntu 22.04 LTS ubuntu ttyS0',
        'ubuntu login: ',
      ].join('\r\n'),
    );
    const d = await withListener(silentListener, { timeoutSeconds: 1, serialLog: log });
    expect(d.cause).toBe('banner-timeout');
    expect(d.serial?.lines.map((l) => l.finding)).toEqual(['cloud-init', 'network', 'login-prompt']);
    expect(formatDiagnosis(d)).toMatch(/\[network\] dhclient\[300\]: No DHCPOFFERS received\./);
  });

  it('says in one line that the serial log does not exist, instead of "0 telling lines of 0" and an empty tail', async () => {
    const log = join(dir, 'never-written-serial.log');
    const d = await withListener(silentListener, { timeoutSeconds: 1, serialLog: log });
    expect(d.cause).toBe('banner-timeout');
    expect(d.serial?.problem).toMatch(/does not exist/);
    const text = formatDiagnosis(d);
    expect(serialSection(text)).toEqual([`Serial log ${log} does not exist: the VM wrote none (it never started, or its serial console goes elsewhere)`, '', expect.stringMatching(/^Verdict in \d+ ms\.$/)]);
    expect(text).not.toMatch(/telling lines|last lines/);
    const md = diagnosisMarkdown(d);
    expect(md).toContain(`**Serial log**\n\n- serial log ${log} does not exist`);
  });

  it('says in one line that the serial log is empty', async () => {
    const log = join(dir, 'empty-serial.log');
    writeFileSync(log, '');
    const d = await withListener(silentListener, { timeoutSeconds: 1, serialLog: log });
    expect(serialSection(formatDiagnosis(d))).toEqual([expect.stringMatching(/^Serial log \S+ is empty: the guest wrote nothing to its serial console/), '', expect.stringMatching(/^Verdict in/)]);
  });
});
