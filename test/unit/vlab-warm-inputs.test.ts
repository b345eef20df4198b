import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { parseQemuArgs, readApplianceWarmOptions, readWarmOptions } from '../../actions/lib/vlab-warm.js';
import { readAccelerator } from '../../actions/lib/preflight.js';
import { kvmAvailable } from '../../actions/lib/qemu-vm.js';
import { repoRoot } from '../support/run-action.js';
import { catchInputError } from '../support/input-error.js';

let dir: string;
let key: string;
let image: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-warm-inputs-'));
  key = join(dir, 'id');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  image = join(dir, 'standard.qcow2');
  // A real (tiny) qcow2: readApplianceWarmOptions asks qemu-img whether it is a disk image; it is never booted here.
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1M']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (values: Record<string, string>) => readWarmOptions(inputsFrom({ 'ssh-key-path': key, ...values }));
const inputError = (values: Record<string, string>) => catchInputError(() => read(values));

describe('vlab-warm inputs', () => {
  it('derives the orchestrator commands from the timeouts and the user', () => {
    const o = read({ image, output: join(dir, 'out.qcow2'), 'init-timeout-minutes': '20', 'ready-timeout-minutes': '5', 'ssh-user': 'labforge' });
    expect(o.initCommand).toBe('sudo -n /usr/local/sbin/hedgehog-lab build-init --lock-timeout 1200');
    expect(o.readyCommand).toBe('sudo -n /usr/local/sbin/hedgehog-lab ready --wait 300');
    expect(o.sealCommand).toBe('sudo -n /usr/local/sbin/hedgehog-lab-seal --remove-authorized-keys labforge');
    expect(o).toMatchObject({ accelerator: 'kvm', nested: true, seal: true, markerPath: '/etc/hedgehog-lab/build-type', version: '0.0.0-dev' });
  });

  it('turns nested off by default under TCG and refuses it when asked for', () => {
    expect(read({ image, output: join(dir, 'o.qcow2'), accelerator: 'tcg' }).nested).toBe(false);
    expect(inputError({ image, output: join(dir, 'o.qcow2'), accelerator: 'tcg', nested: 'true' }).input).toBe('nested');
  });

  it('attach mode takes host and port instead of image, and no output', () => {
    expect(read({ host: '127.0.0.1', port: '2222' }).attach).toEqual({ host: '127.0.0.1', port: 2222 });
    expect(inputError({ host: '127.0.0.1', port: '2222', image }).input).toBe('image');
    expect(inputError({ host: '127.0.0.1', port: '2222', output: join(dir, 'x.qcow2') }).input).toBe('output');
    expect(inputError({ host: '127.0.0.1' }).input).toBe('port');
  });

  it('keeps a USER:TOKEN registry-credential (trimmed) and has none when it is empty', () => {
    expect(read({ host: '127.0.0.1', port: '2222', 'registry-credential': ' bob:ghp_x1 \n' }).registryCredential).toBe('bob:ghp_x1');
    expect(read({ host: '127.0.0.1', port: '2222' })).not.toHaveProperty('registryCredential');
    const e = inputError({ host: '127.0.0.1', port: '2222', 'registry-credential': 'bob ghp_x1' });
    expect(e.input).toBe('registry-credential');
    expect(e.message).not.toContain('ghp_x1');
  });

  it('never writes over the standard image', () => {
    const e = inputError({ image, output: image });
    expect(e.input).toBe('output');
    expect(e.message).toContain('the standard image is never modified');
  });

  it('takes the key as text or as a file, not both, and never a public key', () => {
    expect(() => readWarmOptions(inputsFrom({ 'ssh-key': 'not a key', host: '127.0.0.1', port: '22' }))).toThrow(/ssh-key: does not look like a private key/);
    expect(inputError({ 'ssh-key-path': `${key}.pub`, host: '127.0.0.1', port: '22' }).input).toBe('ssh-key-path');
    const both = () => readWarmOptions(inputsFrom({ 'ssh-key': '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----', 'ssh-key-path': key, host: '127.0.0.1', port: '22' }));
    expect(both).toThrow(/both ssh-key and ssh-key-path/);
  });

  it('checks output before anything boots: not a directory, in a directory that exists and can be written', () => {
    const isDir = inputError({ image, output: dir });
    expect(isDir.input).toBe('output');
    expect(isDir.message).toBe(`output: ${dir} is a directory, expected a file (give the path of the pre-warmed qcow2 file to write, e.g. output/prewarmed.qcow2)`);
    expect(inputError({ image, output: join(dir, 'missing', 'out.qcow2') }).message).toBe(`output: directory ${join(dir, 'missing')} does not exist (create it first)`);
    expect(inputError({ image, output: join(image, 'out.qcow2') }).message).toMatch(/^output: .*standard\.qcow2 is a file, expected a directory/);
  });

  it('refuses an output directory this user cannot write to (as an unprivileged user, through the CLI when this runs as root)', () => {
    const ro = join(dir, 'read-only');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    if (process.getuid?.() !== 0) {
      expect(inputError({ image, output: join(ro, 'out.qcow2') }).message).toBe(`output: directory ${ro} is not writable (choose a directory this user can write to, or fix its permissions)`);
      return;
    }
    // Root may write anywhere: run `labforge warm` as nobody (the files it reads must be readable to nobody).
    chmodSync(dir, 0o755);
    chmodSync(key, 0o644);
    chmodSync(image, 0o644);
    const run = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(repoRoot, 'bin', 'labforge'), 'warm', '--image', image, '--output', join(ro, 'out.qcow2'), '--ssh-key-path', key, '--accelerator', 'tcg'], { encoding: 'utf8' });
    chmodSync(key, 0o600);
    if (run.error) return; // no setpriv: the root case cannot be shown here
    expect(run.stderr).toBe(`labforge warm: output: directory ${ro} is not writable (choose a directory this user can write to, or fix its permissions)\n`);
    expect(run.status).toBe(2);
  });

  it('labforge warm --output naming a directory exits 2 before anything boots', () => {
    const t0 = Date.now();
    const run = spawnSync(process.execPath, [join(repoRoot, 'bin', 'labforge'), 'warm', '--image', image, '--output', dir, '--ssh-key-path', key, '--accelerator', 'tcg'], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(`labforge warm: output: ${dir} is a directory, expected a file (give the path of the pre-warmed qcow2 file to write, e.g. output/prewarmed.qcow2)\n`);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(spawnSync('pgrep', ['-f', `qemu-system.*${dir}`], { encoding: 'utf8' }).stdout.trim()).toBe('');
  });

  it('rejects a relative marker path and a bad version', () => {
    expect(inputError({ host: '127.0.0.1', port: '22', 'marker-path': 'etc/marker' }).input).toBe('marker-path');
    expect(inputError({ host: '127.0.0.1', port: '22', version: 'latest' }).input).toBe('version');
  });
});

describe('qemu-args', () => {
  it('accepts a JSON array (arguments with spaces) or words', () => {
    expect(parseQemuArgs('["-append", "root=/dev/vda console=ttyS0"]')).toEqual(['-append', 'root=/dev/vda console=ttyS0']);
    expect(parseQemuArgs(' -smp 4  -device virtio-rng-pci ')).toEqual(['-smp', '4', '-device', 'virtio-rng-pci']);
    expect(parseQemuArgs('')).toEqual([]);
  });

  it('names the input when the JSON is wrong', () => {
    expect(() => parseQemuArgs('["-m", 4]')).toThrow(/qemu-args: must be an array of strings/);
    expect(() => parseQemuArgs('[oops')).toThrow(/qemu-args: is not a valid JSON array/);
  });
});

describe('accelerator auto', () => {
  it('is KVM where it can be used here, else TCG, for the build and the warm alike', async () => {
    const here = kvmAvailable() ? 'kvm' : 'tcg';
    expect(readAccelerator(inputsFrom({ accelerator: 'auto' }))).toBe(here);
    expect(readAccelerator(inputsFrom({}))).toBe('kvm');
    const o = await readApplianceWarmOptions(inputsFrom({ appliance: join(repoRoot, 'packer', 'demo-lab'), image, output: join(dir, 'out.qcow2'), accelerator: 'auto' }));
    expect(o.accelerator).toBe(here);
    expect(o.nested).toBe(false);
  });

  it('never gives TCG to an appliance that requires KVM', async () => {
    if (kvmAvailable()) return; // on a KVM host auto is kvm, which the Hedgehog appliance accepts
    const err = await readApplianceWarmOptions(inputsFrom({ appliance: join(repoRoot, 'packer', 'hedgehog-lab'), image, output: join(dir, 'out.qcow2'), accelerator: 'auto' })).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/^accelerator: tcg cannot warm hedgehog-lab: its manifest says kvm: required/);
  });
});
