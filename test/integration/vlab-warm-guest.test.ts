/**
 * vlab-warm's guest side at its boundary, against a real OpenSSH sshd on 127.0.0.1 (test/support/sshd.ts)
 * in attach mode — no VM needed for what is tested here:
 * - the registry credential reaches the guest as docker's config (root's, 0700/0600, exactly the bytes the
 *   driver reads), only through stdin: every command line sshd received is recorded (ForceCommand) and none
 *   holds it, nor does any log line; it is gone after readiness, and after a failed init too;
 * - a serial log that does not exist, or is empty, is reported in one line when SSH does not come up.
 * The whole warm of the demo appliance (boot, init, seal, flatten) runs in vlab-warm.test.ts and the e2e.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { dockerConfig } from '../../actions/lib/registry-credential.js';
import { readWarmOptions, warmImage, WarmError, type WarmOptions } from '../../actions/lib/vlab-warm.js';
import { sshVerdict } from '../../actions/lib/vlab-warm-guest.js';
import { createTestUser, freeLocalPort, startSshd, type Sshd, type TestUser } from '../support/sshd.js';
import { catchInputError } from '../support/input-error.js';
import { runCli } from '../support/run-cli.js';
import { runBundledAction } from '../support/run-action.js';

const CREDENTIAL = 'attendee:ghp_Zq9secretTOKEN4711';
const BASE64 = Buffer.from(CREDENTIAL).toString('base64');

let work: string;
let sshd: Sshd;
let user: TestUser;
let keyFile: string;
let commandsLog: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'labforge-warm-guest-'));
  chmodSync(work, 0o755);
  keyFile = join(work, 'id');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
  user = await createTestUser({ sudo: 'nopasswd', authorizedKeys: [readFileSync(`${keyFile}.pub`, 'utf8')] });
  // Every command line the "guest" is asked to run, as sshd received it, recorded before it runs.
  commandsLog = join(work, 'commands.log');
  writeFileSync(commandsLog, '', { mode: 0o666 });
  chmodSync(commandsLog, 0o666);
  const record = join(work, 'record-command');
  writeFileSync(record, `#!/bin/sh\nprintf '%s\\n' "$SSH_ORIGINAL_COMMAND" >>${commandsLog}\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n`, { mode: 0o755 });
  sshd = await startSshd({ settings: { PasswordAuthentication: 'no', ForceCommand: record } });
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
  await user?.remove();
  rmSync(work, { recursive: true, force: true });
});

/** Attach-mode warm options against the test sshd, with the marker and manifest in a temporary directory. */
function attachOptions(over: Record<string, string>): WarmOptions {
  const guestDir = mkdtempSync(join(work, 'guest-'));
  return readWarmOptions(
    inputsFrom({
      host: '127.0.0.1',
      port: String(sshd.port),
      'ssh-user': user.name,
      'ssh-key-path': keyFile,
      seal: 'false',
      'status-command': '',
      'ready-command': 'true',
      'marker-path': join(guestDir, 'build-type'),
      'manifest-path': join(guestDir, 'warm-manifest.json'),
      'registry-credential': CREDENTIAL,
      ...over,
    }),
  );
}

describe('the registry credential in a warm', () => {
  it('reaches the guest file the driver reads, only through stdin, and is gone once the lab is ready', async () => {
    const dir = join(mkdtempSync(join(work, 'run-')), 'registry');
    const file = join(dir, 'config.json');
    // The "lab initialization" shows what it finds: owner and mode of the directory and the file, and its hash.
    const init = `sudo -n stat -c 'dir %a %U' ${dir}; sudo -n stat -c 'file %a %U' ${file}; echo "sha $(sudo -n sha256sum ${file} | cut -d' ' -f1)"`;
    const lines: string[] = [];
    const writeBefore = readFileSync(commandsLog, 'utf8').length;
    const result = await warmImage({ ...attachOptions({ 'init-command': init }), registryConfigDir: dir }, { log: (l) => lines.push(l) });
    const log = lines.join('\n');
    expect(log).toContain('  | dir 700 root');
    expect(log).toContain('  | file 600 root');
    expect(log).toContain(`  | sha ${createHash('sha256').update(dockerConfig(CREDENTIAL)).digest('hex')}`);
    expect(JSON.parse(dockerConfig(CREDENTIAL))).toEqual({ auths: { 'ghcr.io': { auth: BASE64 } } });
    expect(Object.keys(result.timeline)).toEqual(['ssh-up', 'credential', 'init', 'ready', 'credential-remove', 'mark']);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    // Never on a command line (what sshd received), never in a log line, in clear or in base64.
    const commands = readFileSync(commandsLog, 'utf8').slice(writeBefore);
    expect(commands).toContain(`cat >`);
    for (const text of [commands, log, sshd.log(), JSON.stringify(result.manifest)]) {
      expect(text).not.toContain(CREDENTIAL);
      expect(text).not.toContain('ghp_Zq9secretTOKEN4711');
      expect(text).not.toContain(BASE64);
    }
  }, 60_000);

  it('is removed from the guest when the lab initialization fails', async () => {
    const dir = join(mkdtempSync(join(work, 'run-')), 'registry');
    const lines: string[] = [];
    const err = await warmImage({ ...attachOptions({ 'init-command': `sudo -n test -s ${dir}/config.json && exit 3` }), registryConfigDir: dir }, { log: (l) => lines.push(l) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WarmError);
    expect((err as WarmError).step).toBe('init');
    expect((err as WarmError).message).toMatch(/exited with 3/);
    expect(lines.join('\n')).toContain(`removed the registry credential ${dir}/config.json from the guest`);
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
  }, 60_000);

  it('is not written when none is given', async () => {
    const result = await warmImage(attachOptions({ 'registry-credential': '', 'init-command': 'true' }));
    expect(Object.keys(result.timeline)).toEqual(['ssh-up', 'init', 'ready', 'mark']);
  }, 60_000);

  it('must be USER:TOKEN, and the error never repeats it', () => {
    const err = catchInputError(() => attachOptions({ 'registry-credential': 'ghp_only-a-token' }));
    expect(err.message).toBe('registry-credential: is not USER:TOKEN (give the registry user name and token separated by a colon)');
  });

  it('labforge warm refuses it on the command line and names the environment variable', async () => {
    const run = await runCli(['warm', '--attach', `127.0.0.1:${sshd.port}`, '--ssh-key-path', keyFile, '--registry-credential', CREDENTIAL]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^labforge warm: registry-credential: must not be given on the command line .*LABFORGE_REGISTRY_CREDENTIAL/m);
  });

  it('labforge warm reads it from LABFORGE_REGISTRY_CREDENTIAL, checks it before connecting, and never prints it', async () => {
    const run = await runCli(['warm', '--attach', `127.0.0.1:${sshd.port}`, '--ssh-key-path', keyFile, '--ssh-user', user.name, '--seal', 'false'], { env: { LABFORGE_REGISTRY_CREDENTIAL: 'no-colon-token' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('registry-credential: is not USER:TOKEN');
    expect(run.stderr + run.stdout).not.toContain('no-colon-token');
  });
});

describe('the action bundle', () => {
  it('masks registry-credential before anything reads it, and never prints it', async () => {
    const bad = 'no-colon-ghp_Zq9secret';
    const run = await runBundledAction('vlab-warm', { inputs: { host: '127.0.0.1', port: String(sshd.port), 'ssh-key-path': keyFile, 'registry-credential': bad } });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toContain('registry-credential: is not USER:TOKEN');
    expect(run.stdout.split('\n')).toContain(`::add-mask::${bad}`);
    const rest = [...run.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::')), run.stderr].join('\n');
    expect(rest).not.toContain(bad);
  }, 60_000);
});

describe('SSH that does not come up, with a serial log that holds no evidence', () => {
  const opts = (): WarmOptions => ({ ...attachOptions({ 'registry-credential': '' }), sshKey: readFileSync(keyFile, 'utf8') });

  it('says in one line that the serial log does not exist', async () => {
    const port = await freeLocalPort();
    const missing = join(work, 'never-written.serial.log');
    const verdict = await sshVerdict('127.0.0.1', port, opts(), missing);
    expect(verdict).toMatch(/^ssh-diagnose 127\.0\.0\.1:\d+ as /);
    expect(verdict.split('\n')).toContain(`serial log ${missing} does not exist: the VM wrote none (it never started, or its serial console goes elsewhere)`);
  }, 60_000);

  it('says in one line that the serial log is empty', async () => {
    const port = await freeLocalPort();
    const empty = join(work, 'empty.serial.log');
    writeFileSync(empty, '');
    const verdict = await sshVerdict('127.0.0.1', port, opts(), empty);
    expect(verdict.split('\n').filter((l) => l.includes(empty))).toEqual([`serial log ${empty} is empty: the guest wrote nothing to its serial console (no console=ttyS0 on its kernel command line, or it never got that far)`]);
  }, 60_000);
});
