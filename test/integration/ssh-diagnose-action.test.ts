/**
 * The bundled ssh-diagnose action (actions/ssh-diagnose/dist/index.js, run as the runner runs it) and
 * `labforge ssh-diagnose`, against real sshd servers: the same verdicts, secrets never printed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBundledAction, unexpectedCommandLines, type ActionRun } from '../support/run-action.js';
import { runCli } from '../support/run-cli.js';
import { createTestUser, generateClientKey, startSshd, type ClientKey, type Sshd, type TestUser } from '../support/sshd.js';

let dir: string;
let user: TestUser;
let key: ClientKey;
let open: Sshd; // default config: password and publickey
let keyOnly: Sshd; // PasswordAuthentication no

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-ssh-diagnose-action-'));
  key = generateClientKey(dir, 'ed25519');
  user = await createTestUser({ authorizedKeys: [key.publicKey], sudo: 'nopasswd' });
  open = await startSshd();
  keyOnly = await startSshd({ settings: { PasswordAuthentication: 'no' } });
});

afterAll(async () => {
  await open?.stop();
  await keyOnly?.stop();
  await user?.remove();
  rmSync(dir, { recursive: true, force: true });
});

/** Everything the action printed or wrote, except the `::add-mask::` commands that tell the runner what to mask. */
function everythingVisible(run: ActionRun): string {
  const stdout = run.stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n');
  return [stdout, run.stderr, run.summary, ...Object.values(run.outputs), ...Object.values(run.state)].join('\n');
}

describe('the bundled ssh-diagnose action', () => {
  it('reports ok with a password: outputs, summary, and the password masked', async () => {
    const run = await runBundledAction('ssh-diagnose', {
      inputs: { port: String(open.port), username: user.name, password: user.password, 'timeout-seconds': '5', 'expected-host-key': open.hostKeyFingerprint },
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs.cause).toBe('ok');
    expect(run.outputs.ok).toBe('true');
    const report = JSON.parse(run.outputs.report ?? '{}');
    expect(report.probes.map((p: { name: string }) => p.name)).toEqual(['tcp', 'banner', 'kex', 'host-key', 'auth none', 'auth password', 'command', 'sudo -n true']);
    expect(report.hostKey.matches).toBe(true);
    expect(run.summary).toContain('SSH diagnosis: `ok`');
    expect(run.summary).toContain('| auth password | ok |');
    expect(run.stdout).toContain(`::add-mask::${user.password}`);
    expect(everythingVisible(run)).not.toContain(user.password);
  });

  it('fails with the cause on a wrong password, and never prints the password', async () => {
    const wrong = `${user.password}-wrong`;
    const run = await runBundledAction('ssh-diagnose', {
      inputs: { port: String(open.port), username: user.name, password: wrong, 'timeout-seconds': '5' },
    });
    expect(run.code).toBe(1);
    expect(run.outputs.cause).toBe('auth-rejected');
    expect(run.outputs.ok).toBe('false');
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]).toMatch(/^::error title=ssh-diagnose::auth-rejected: The server offered the method but refused the credential/);
    expect(run.summary).toContain('openssl passwd -6');
    expect(everythingVisible(run)).not.toContain(wrong);
    expect(run.stdout + run.stderr).not.toMatch(/\n\s+at /);
  });

  it('only sets the outputs when fail-on-error is false (password auth disabled)', async () => {
    const run = await runBundledAction('ssh-diagnose', {
      inputs: { port: String(keyOnly.port), username: user.name, password: user.password, 'fail-on-error': 'false', 'timeout-seconds': '5' },
    });
    expect(run.code).toBe(0);
    expect(run.errors).toEqual([]);
    expect(run.outputs.cause).toBe('password-auth-disabled');
    expect(run.summary).toContain('ssh_pwauth: true');
    expect(everythingVisible(run)).not.toContain(user.password);
  });

  it('logs in with a private key given as text, and masks every line of it', async () => {
    const run = await runBundledAction('ssh-diagnose', {
      inputs: { port: String(keyOnly.port), username: user.name, 'private-key': key.privateKey, 'timeout-seconds': '5' },
    });
    expect(run.outputs.cause).toBe('ok');
    expect(run.code).toBe(0);
    const secretLine = key.privateKey.split('\n')[1] ?? '';
    expect(secretLine.length).toBeGreaterThan(20);
    expect(run.stdout).toContain(`::add-mask::${secretLine}`);
    expect(everythingVisible(run)).not.toContain(secretLine);
  });

  it('rejects bad input before connecting, naming the input', async () => {
    const run = await runBundledAction('ssh-diagnose', { inputs: { username: 'u', port: '70000' } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual(['::error title=ssh-diagnose::port: 70000 is out of range (use a value from 1 to 65535)']);
    const fp = await runBundledAction('ssh-diagnose', { inputs: { username: 'u', 'expected-host-key': 'MD5:aa:bb' } });
    expect(fp.errors[0]).toMatch(/expected-host-key: 'MD5:aa:bb' is not a SHA256 fingerprint/);
    const nokey = await runBundledAction('ssh-diagnose', { inputs: { username: 'u', 'private-key-path': join(dir, 'missing') } });
    expect(nokey.errors[0]).toMatch(/private-key-path: cannot read .*ENOENT/);
  });
});

describe('labforge ssh-diagnose', () => {
  it('gives the same verdict and probes as the action (ok and a failure)', async () => {
    for (const [server, cause] of [
      [open, 'ok'],
      [keyOnly, 'password-auth-disabled'],
    ] as const) {
      const cli = await runCli(['ssh-diagnose', '--port', String(server.port), '--username', user.name, '--timeout-seconds', '5', '--json'], {
        env: { LABFORGE_SSH_PASSWORD: user.password },
      });
      const action = await runBundledAction('ssh-diagnose', {
        inputs: { port: String(server.port), username: user.name, password: user.password, 'timeout-seconds': '5', 'fail-on-error': 'false' },
      });
      const fromCli = JSON.parse(cli.stdout);
      const fromAction = JSON.parse(action.outputs.report ?? '{}');
      expect(fromCli.cause).toBe(cause);
      expect(fromAction.cause).toBe(cause);
      expect(cli.code).toBe(cause === 'ok' ? 0 : 1);
      const shape = (r: { probes: { name: string; ok: boolean }[] }) => r.probes.map((p) => [p.name, p.ok]);
      expect(shape(fromCli)).toEqual(shape(fromAction));
      expect(cli.stdout + cli.stderr).not.toContain(user.password);
    }
  });

  it('reads the password from --password-env or --password-file and prints a readable verdict', async () => {
    const viaEnv = await runCli(['ssh-diagnose', '--port', String(open.port), '--username', user.name, '--password-env', 'MY_PW', '--timeout-seconds', '5'], {
      env: { MY_PW: user.password },
    });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toMatch(/: ok\n/);
    expect(viaEnv.stdout).toMatch(/ok\s+auth password/);
    const file = join(dir, 'pw');
    writeFileSync(file, `${user.password}-wrong\n`, { mode: 0o600 });
    const viaFile = await runCli(['ssh-diagnose', '--port', String(open.port), '--username', user.name, '--password-file', file, '--timeout-seconds', '5']);
    expect(viaFile.code).toBe(1);
    expect(viaFile.stdout).toMatch(/auth-rejected/);
    expect(viaFile.stdout).toMatch(/Fix:\n {2}- Wrong password/);
    expect(viaFile.stdout + viaFile.stderr).not.toContain(user.password);
  });

  it('refuses a password on the command line and other bad input with exit 2', async () => {
    const pw = await runCli(['ssh-diagnose', '--username', 'u', '--password', 'hunter2']);
    expect(pw.code).toBe(2);
    expect(pw.stderr).toMatch(/password: must not be given on the command line/);
    const env = await runCli(['ssh-diagnose', '--username', 'u', '--password-env', 'NOT_SET_LF']);
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/password-env: the environment variable NOT_SET_LF is not set/);
    const user2 = await runCli(['ssh-diagnose', '--port', '22']);
    expect(user2.code).toBe(2);
    expect(user2.stderr).toMatch(/username: is required/);
  });
});

describe('workflow-command injection through ssh-diagnose inputs, files and the log', () => {
  // Nothing listens on port 1: every run is a fast connection-refused verdict.
  const closed = { host: '127.0.0.1', port: '1', 'timeout-seconds': '2' };

  it('refuses a username holding a line break and ::error::, with one well-formed annotation naming the input', async () => {
    const run = await runBundledAction('ssh-diagnose', { inputs: { ...closed, username: 'bob\n::error::pwned' } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual([
      "::error title=ssh-diagnose::username: 'bob\\u000a::error::pwned' contains a line break (give the user name on one line, without control characters)",
    ]);
    expect(unexpectedCommandLines(run, 'ssh-diagnose')).toEqual([]);
  });

  it('refuses a host holding a line break, naming the input', async () => {
    const run = await runBundledAction('ssh-diagnose', { inputs: { ...closed, host: '127.0.0.1\n::warning::pwned', username: 'bob' } });
    expect(run.code).toBe(1);
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]).toMatch(/^::error title=ssh-diagnose::host: '127\.0\.0\.1\\u000a::warning::pwned' contains a line break/);
    expect(unexpectedCommandLines(run, 'ssh-diagnose')).toEqual([]);
  });

  it('keeps a line break of a path inside the annotation (%0A), never a second command line', async () => {
    const run = await runBundledAction('ssh-diagnose', { inputs: { ...closed, username: 'bob', 'private-key-path': '/nonexistent/key\n::error::pwned' } });
    expect(run.code).toBe(1);
    expect(run.errors).toEqual([
      "::error title=ssh-diagnose::private-key-path: cannot read '/nonexistent/key%0A::error::pwned' (ENOENT) (give the path of an existing private key file)",
    ]);
    expect(unexpectedCommandLines(run, 'ssh-diagnose')).toEqual([]);
  });

  it('quotes a hostile serial log (commands, ESC]0;…BEL, C1) without letting any of it act', async () => {
    const serial = join(dir, 'serial\n::error::from-the-path.log');
    writeFileSync(serial, ['Booting', '::error title=guest::from the serial log', '  ::add-mask::x', '##[warning]legacy', '\x1b]0;owned\x07title', 'csi \u009b31m red', ''].join('\n'));
    const run = await runBundledAction('ssh-diagnose', { inputs: { ...closed, username: 'bob', 'serial-log': serial, 'fail-on-error': 'false' } });
    expect(run.code).toBe(0);
    expect(run.outputs.cause).toBe('connection-refused');
    expect(run.stdout).toContain('serial\\u000a::error::from-the-path.log (0 telling lines');
    expect(run.stdout).toContain('##\\u005bwarning]legacy');
    expect(run.stdout).toContain('\\u009b31m red');
    expect(run.stdout).toContain('\\u003a:error title=guest::from the serial log');
    expect(unexpectedCommandLines(run, 'ssh-diagnose')).toEqual([]);
    // eslint-disable-next-line no-control-regex
    expect(run.stdout).not.toMatch(/[\x07\x1b\u009b]/);
  });
});
