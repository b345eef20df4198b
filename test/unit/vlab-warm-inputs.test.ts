import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  writeFileSync(image, '');
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

  it('never writes over the standard image', () => {
    const e = inputError({ image, output: image });
    expect(e.input).toBe('output');
    expect(e.message).toContain('the standard image is never modified');
  });

  it('takes the key as text or as a file, not both, and never a public key', () => {
    expect(() => readWarmOptions(inputsFrom({ 'ssh-key': 'not a key', host: 'h', port: '22' }))).toThrow(/ssh-key: does not look like a private key/);
    expect(inputError({ 'ssh-key-path': `${key}.pub`, host: 'h', port: '22' }).input).toBe('ssh-key-path');
    const both = () => readWarmOptions(inputsFrom({ 'ssh-key': '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----', 'ssh-key-path': key, host: 'h', port: '22' }));
    expect(both).toThrow(/both ssh-key and ssh-key-path/);
  });

  it('rejects a relative marker path and a bad version', () => {
    expect(inputError({ host: 'h', port: '22', 'marker-path': 'etc/marker' }).input).toBe('marker-path');
    expect(inputError({ host: 'h', port: '22', version: 'latest' }).input).toBe('version');
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
