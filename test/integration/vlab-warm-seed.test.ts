/**
 * vlab-warm's cloud-init seed: the NoCloud ISO (read back with isoinfo), the key it authorizes (checked with
 * ssh-keygen), the seed step inside a real warm (real QEMU under TCG, booting an empty disk) that removes the
 * seed after a failure and after a cancellation, the post step, the masking of the generated key, and the
 * input validation.
 *
 * A login through the seed is proven end to end by the workflows e2e (test/e2e/workflows.test.ts): the demo
 * appliance has cloud-init, and build.yml warms its published standard OVA exactly this way (and the published
 * pre-warmed OVA is booted with an attendee's seed). Here, what the seed step adds is tested up to QEMU
 * accepting it.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { createSeed, removeSeed, seedQemuArgs } from '../../actions/lib/cloud-init-seed.js';
import { cleanupWarm, readWarmOptions, warmImage, WarmError, type WarmResources } from '../../actions/lib/vlab-warm.js';
import { runBundledAction } from '../support/run-action.js';
import { catchInputError } from '../support/input-error.js';

let work: string;
let image: string;

const isoinfo = (...args: string[]) => execFileSync('isoinfo', args, { encoding: 'utf8' });
/** The public key line of a private key, as OpenSSH itself derives it (type and base64, no comment). */
function publicHalf(privateKey: string): string {
  const file = join(work, `key-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, privateKey, { mode: 0o600 });
  try {
    return execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
  } finally {
    rmSync(file, { force: true });
  }
}
const typeAndBase64 = (line: string) => line.trim().split(' ').slice(0, 2).join(' ');
const seedDirs = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('labforge-seed-'));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface SeedUserData {
  users: { name: string; sudo: string; lock_passwd: boolean; ssh_authorized_keys: string[] }[];
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'labforge-warm-seed-'));
  image = join(work, 'standard.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the NoCloud seed', () => {
  it('is an ISO labelled cidata whose user-data authorizes exactly the generated key for the user, with sudo', async () => {
    const seed = await createSeed({ user: 'labforge', parentDir: work });
    try {
      expect(statSync(seed.dir).mode & 0o777).toBe(0o700);
      expect(isoinfo('-d', '-i', seed.iso)).toMatch(/^Volume id: cidata$/m);
      // Rock Ridge names (what cloud-init mounts and reads), and the plain ISO 9660 8.3 name, agree.
      const userData = isoinfo('-R', '-i', seed.iso, '-x', '/user-data');
      expect(isoinfo('-i', seed.iso, '-x', '/USER_DAT.;1')).toBe(userData);
      expect(userData.startsWith('#cloud-config\n')).toBe(true);
      const config = parse(userData) as SeedUserData;
      expect(config.users).toHaveLength(1);
      expect(config.users[0]).toMatchObject({ name: 'labforge', sudo: 'ALL=(ALL) NOPASSWD:ALL', lock_passwd: false });
      expect(config.users[0]!.ssh_authorized_keys).toEqual([seed.publicKey]);
      // The authorized key is the public half of the private key vlab-warm logs in with (OpenSSH says so).
      expect(seed.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
      expect(typeAndBase64(seed.publicKey)).toBe(publicHalf(seed.privateKey));
      expect(seed.publicKey).toMatch(/^ssh-ed25519 /);
      // The private key is in memory only: nothing in the seed directory holds it.
      const body = seed.privateKey.split('\n')[1]!;
      for (const f of readdirSync(seed.dir)) expect(readFileSync(join(seed.dir, f), 'latin1')).not.toContain(body);
      const metaData = parse(isoinfo('-J', '-i', seed.iso, '-x', '/meta-data')) as Record<string, string>;
      expect(metaData['instance-id']).toBe(seed.instanceId);
      expect(seedQemuArgs(seed)).toEqual(['-drive', `file=${seed.iso},if=virtio,readonly=on,format=raw`]);
    } finally {
      await removeSeed(seed);
    }
    expect(existsSync(seed.dir)).toBe(false);
  });

  it('gets a new key and instance-id every time', async () => {
    const [a, b] = await Promise.all([createSeed({ user: 'lab', parentDir: work }), createSeed({ user: 'lab', parentDir: work })]);
    await Promise.all([removeSeed(a), removeSeed(b)]);
    expect(a.publicKey).not.toBe(b.publicKey);
    expect(a.instanceId).not.toBe(b.instanceId);
    expect(a.dir).not.toBe(b.dir);
  });

  it('authorizes a given key’s public half', async () => {
    const keyFile = join(work, 'given');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
    const seed = await createSeed({ user: 'lab', parentDir: work, privateKey: readFileSync(keyFile, 'utf8') });
    try {
      const config = parse(isoinfo('-R', '-i', seed.iso, '-x', '/user-data')) as SeedUserData;
      expect(config.users[0]!.ssh_authorized_keys.map(typeAndBase64)).toEqual([typeAndBase64(readFileSync(`${keyFile}.pub`, 'utf8'))]);
    } finally {
      await removeSeed(seed);
    }
  });

  it('escapes commas in the ISO path for QEMU', () => {
    expect(seedQemuArgs({ iso: '/tmp/a,b/seed.iso' })[1]).toBe('file=/tmp/a,,b/seed.iso,if=virtio,readonly=on,format=raw');
  });
});

describe('cloud-init-seed input', () => {
  const read = (values: Record<string, string>) => readWarmOptions(inputsFrom(values));
  const inputError = (values: Record<string, string>) => catchInputError(() => read(values));

  it('needs no key: the seed step makes one', () => {
    const o = read({ image, output: join(work, 'o.qcow2'), 'cloud-init-seed': 'true' });
    expect(o).toMatchObject({ cloudInitSeed: true, sshKey: '' });
  });

  it('is off by default, and then a key is still required', () => {
    expect(inputError({ image, output: join(work, 'o.qcow2') }).message).toMatch(/ssh-key-path: no SSH key given.*cloud-init-seed/);
  });

  it('is refused in attach mode, naming the input', () => {
    const e = inputError({ host: '127.0.0.1', port: '2222', 'cloud-init-seed': 'true' });
    expect(e.input).toBe('cloud-init-seed');
    expect(e.message).toMatch(/attach mode/);
  });

  it('must be a boolean', () => {
    expect(inputError({ image, output: join(work, 'o.qcow2'), 'cloud-init-seed': 'yes please' }).input).toBe('cloud-init-seed');
  });
});

describe('the seed step in a warm (real QEMU, TCG, empty disk)', () => {
  const options = (extra: Record<string, string>) =>
    readWarmOptions(inputsFrom({ image, output: join(work, 'out.qcow2'), accelerator: 'tcg', memory: '256', cpus: '1', 'ssh-user': 'labforge', 'cloud-init-seed': 'true', 'ssh-timeout-minutes': '1', ...extra }));

  it('removes the seed and its key when the boot fails', async () => {
    const resources: WarmResources = {};
    const secrets: string[] = [];
    const lines: string[] = [];
    let isoAtBoot = false;
    const warm = warmImage(options({ 'qemu-args': '-no-such-option' }), {
      log: (l) => lines.push(l),
      onResources: (r) => Object.assign(resources, r),
      onSecret: (s) => secrets.push(s),
      onStepStart: (step) => {
        if (step === 'boot') isoAtBoot = existsSync(join(resources.seedDir ?? '/nonexistent', 'seed.iso'));
      },
    });
    const e = await warm.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(WarmError);
    expect((e as WarmError).step).toBe('boot');
    expect((e as WarmError).timeline.map((t) => t.step).slice(0, 3)).toEqual(['overlay', 'seed', 'boot']);
    expect(isoAtBoot).toBe(true);
    expect(resources.seedDir).toBeDefined();
    expect(existsSync(resources.seedDir!)).toBe(false);
    expect(existsSync(resources.overlay!)).toBe(false);
    // The generated key was handed over for masking, and never logged.
    expect(secrets).toHaveLength(1);
    expect(secrets[0]).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    const body = secrets[0]!.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
    for (const b of body) expect(lines.join('\n')).not.toContain(b);
    expect(lines.join('\n')).toMatch(/removed the cloud-init seed/);
  }, 60_000);

  it('boots QEMU with the seed as a read-only virtio disk, and removes it (and QEMU) when cancelled', async () => {
    const resources: WarmResources = {};
    const controller = new AbortController();
    let cmdline = '';
    let qemuAlive = false;
    const e = await warmImage(options({}), {
      signal: controller.signal,
      onResources: (r) => Object.assign(resources, r),
      onStepStart: (step) => {
        if (step !== 'ssh-up') return;
        cmdline = readFileSync(`/proc/${resources.qemuPid}/cmdline`, 'utf8').split('\0').join(' ');
        // QEMU checks its -drive options at start: still running after its QMP socket is up = accepted.
        qemuAlive = alive(resources.qemuPid!);
        controller.abort(new Error('test cancels'));
      },
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(WarmError);
    expect((e as WarmError).message).toMatch(/cancelled during ssh-up/);
    expect(qemuAlive).toBe(true);
    expect(cmdline).toContain(`-drive file=${join(resources.seedDir!, 'seed.iso')},if=virtio,readonly=on,format=raw`);
    expect(alive(resources.qemuPid!)).toBe(false);
    expect(existsSync(resources.seedDir!)).toBe(false);
    expect(seedDirs(tmpdir()).filter((d) => join(tmpdir(), d) === resources.seedDir)).toEqual([]);
  }, 60_000);

  it('skips the seed step when cloud-init-seed is false', async () => {
    const key = join(work, 'k');
    if (!existsSync(key)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const resources: WarmResources = {};
    const e = await warmImage(readWarmOptions(inputsFrom({ image, output: join(work, 'out.qcow2'), accelerator: 'tcg', 'ssh-key-path': key, 'qemu-args': '-no-such-option' })), {
      onResources: (r) => Object.assign(resources, r),
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((e as WarmError).timeline.find((t) => t.step === 'seed')?.status).toBe('skipped');
    expect(resources.seedDir).toBeUndefined();
  }, 60_000);
});

describe('the action bundle', () => {
  it('masks the generated key and leaves no seed behind when the warm fails', async () => {
    const runnerTemp = join(work, 'runner-temp');
    mkdirSync(runnerTemp, { recursive: true });
    const run = await runBundledAction('vlab-warm', {
      inputs: { image, output: join(work, 'action-out.qcow2'), accelerator: 'tcg', memory: '256', 'cloud-init-seed': 'true', 'qemu-args': '-no-such-option' },
      env: { RUNNER_TEMP: runnerTemp },
    });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/warm failed at boot/);
    // The seed was made under RUNNER_TEMP, saved for the post step, and already removed by the step's cleanup.
    expect(run.state['seed-dir']).toMatch(new RegExp(`^${runnerTemp}/labforge-seed-`));
    expect(seedDirs(runnerTemp)).toEqual([]);
    // core.setSecret: the key is registered with ::add-mask:: (the runner hides it) and appears nowhere else.
    const masks = run.stdout.split('\n').filter((l) => l.startsWith('::add-mask::'));
    expect(masks.some((l) => l.includes('BEGIN OPENSSH PRIVATE KEY'))).toBe(true);
    const keyLines = masks.map((l) => l.slice('::add-mask::'.length)).filter((l) => !l.includes('%0A') && !l.includes('PRIVATE KEY'));
    expect(keyLines.length).toBeGreaterThan(0);
    const rest = [...run.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::')), run.stderr].join('\n');
    for (const k of keyLines) expect(rest).not.toContain(k);
  }, 60_000);

  it('refuses cloud-init-seed with host/port, naming the input', async () => {
    const run = await runBundledAction('vlab-warm', { inputs: { host: '127.0.0.1', port: '2222', 'cloud-init-seed': 'true' } });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/cloud-init-seed: cannot be used in attach mode/);
  });

  it('post step removes a seed left by a killed warm, and nothing that is not a seed', async () => {
    const seed = await createSeed({ user: 'lab', parentDir: work });
    const other = mkdtempSync(join(work, 'not-a-seed-'));
    const run = await runBundledAction('vlab-warm', { post: { 'seed-dir': seed.dir } });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`removed cloud-init seed ${seed.dir}`);
    expect(existsSync(seed.dir)).toBe(false);
    expect(await cleanupWarm({ seedDir: other })).toEqual([]);
    expect(existsSync(other)).toBe(true);
  });
});
