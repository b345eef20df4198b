/**
 * Bad input on the `labforge` command line (issue 15, "answered weakly"): every case runs the built CLI
 * (bin/labforge → cli/dist) as a user would and must be answered with exit code 2 and one stderr line that
 * names the flag — no stack trace, no raw `::` workflow command, within 5 s (nothing here boots a VM or runs
 * Packer: each is refused before anything slow). Run `node scripts/build.mjs` first.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { keyFileModeWarning } from '../../actions/lib/ssh-key-check.js';
import { readWarmOptions } from '../../actions/lib/vlab-warm.js';
import { expectWithinBadInputBound, needsSecondRun, timeBadInput, type BadInputTimes } from '../support/input-error.js';
import { runCli, type CliRun } from '../support/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'labforge-bad-input-'));
const p = (name: string) => join(dir, name);
const TEMPLATE = 'test/fixtures/packer/fast/image.pkr.hcl';

beforeAll(() => {
  writeFileSync(p('afile'), 'a file, not a directory\n');
  writeFileSync(p('empty.img'), '');
  writeFileSync(p('img.qcow2'), 'x'.repeat(100));
  writeFileSync(p('notes.txt'), 'hello\n');
  writeFileSync(p('junk.pkr.hcl'), 'not a template at all\n');
  writeFileSync(p('other.json'), '{"a": 1}\n');
  writeFileSync(p('damaged.key'), '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAnotakey\n-----END OPENSSH PRIVATE KEY-----\n');
  mkdirSync(p('out.ova'));
  mkdirSync(p('a-dir'));
  mkdirSync(p('no-templates'));
  mkdirSync(p('ova-out'));
  writeFileSync(p('notes.qcow2'), 'these are notes, not a disk\n');
  execFileSync('mkfifo', [p('pipe.qcow2')]);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', p('disk.qcow2'), '64M']);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'plain', '-f', p('plain.key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'sekrit', '-C', 'enc', '-f', p('enc.key')]);
  chmodSync(p('plain.key'), 0o600);
  chmodSync(p('enc.key'), 0o600);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  name: string;
  args: () => string[];
  /** The single stderr line must match this (it names the flag). */
  line: RegExp;
  env?: Record<string, string>;
}

const warmBoot = () => ['--image', p('img.qcow2'), '--output', p('warm.qcow2'), '--accelerator', 'tcg', '--nested', 'false'];
const FP = 'SHA256:' + 'A'.repeat(43);
/** upload-artifact with --image: a real (empty) qcow2, demo-lab's manifest, a new OVA in an existing directory. */
const packUpload = (over: Record<string, string | undefined> = {}): string[] => {
  const flags: Record<string, string | undefined> = {
    image: p('disk.qcow2'),
    'appliance-dir': 'packer/demo-lab',
    path: join(p('ova-out'), 'demo-lab-standard-1.0.0.ova'),
    destination: `file://${p('a-dir')}`,
    version: '1.0.0',
    'build-type': 'standard',
    ...over,
  };
  return ['upload-artifact', ...Object.entries(flags).flatMap(([k, v]) => (v === undefined ? [] : [`--${k}`, v]))];
};

const cases: Case[] = [
  // The parser: unknown options, negative numbers, a value-taking flag followed by another option.
  { name: 'unknown option', args: () => ['pack-ova', '--no-such-flag'], line: /^labforge pack-ova: unknown option --no-such-flag \(see labforge pack-ova --help\)$/ },
  { name: 'unknown option through an alias', args: () => ['warm', '--colour', 'red'], line: /^labforge warm: unknown option --colour \(see labforge warm --help\)$/ },
  { name: 'unknown non-ASCII option', args: () => ['pipeline', '--grüße'], line: /^labforge pipeline: unknown option --grüße \(see labforge pipeline --help\)$/ },
  { name: 'unknown short option', args: () => ['upload-artifact', '-x'], line: /^labforge upload-artifact: unknown option -x / },
  { name: 'unknown option with =value', args: () => ['doctor', '--nope=1'], line: /^labforge doctor: unknown option --nope \(/ },
  { name: 'a switch given a value', args: () => ['pack-ova', '--keep-intermediates=yes'], line: /^labforge pack-ova: option --keep-intermediates is a switch and takes no value/ },
  { name: 'a value flag at the end', args: () => ['pack-ova', '--version'], line: /^labforge pack-ova: option --version needs a value/ },
  { name: 'a value flag followed by an option', args: () => ['pack-ova', '--version', '--image', 'x.qcow2'], line: /^labforge pack-ova: option --version needs a value but is followed by the option --image / },
  { name: 'a value flag followed by an option=value', args: () => ['upload-artifact', '--path', '--overwrite=true'], line: /option --path needs a value but is followed by the option --overwrite / },
  { name: 'negative number: pack-ova --cpus -5', args: () => ['pack-ova', '--image', p('img.qcow2'), '--version', '1.0.0', '--cpus', '-5'], line: /^labforge pack-ova: cpus: -5 is out of range \(use a value from 1 to 256\)$/ },
  { name: 'negative number: pack-ova --memory-mib -1', args: () => ['pack-ova', '--image', p('img.qcow2'), '--version', '1.0.0', '--memory-mib', '-1'], line: /^labforge pack-ova: memory-mib: -1 is out of range/ },
  { name: 'negative number: ssh-diagnose --port -1', args: () => ['ssh-diagnose', '--port', '-1'], line: /^labforge ssh-diagnose: port: -1 is out of range/ },
  { name: 'negative number: vlab-warm --cpus -2', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('plain.key'), '--cpus', '-2'], line: /^labforge vlab-warm: cpus: -2 is out of range/ },
  { name: 'negative fraction: vlab-warm --memory -0.5', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('plain.key'), '--memory', '-0.5'], line: /^labforge vlab-warm: memory: '-0\.5' is not a whole number/ },
  { name: 'negative number: packer-build --timeout-minutes -5', args: () => ['packer-build', '--template', TEMPLATE, '--version', '1.0.0', '--timeout-minutes', '-5'], line: /^labforge packer-build: timeout-minutes: -5 is out of range/ },

  // A file where a directory is expected, and the reverse (before any work).
  { name: 'pipeline --out is a file', args: () => ['pipeline', '--out', p('afile')], line: /^labforge pipeline: out: .*afile is a file, expected a directory \(/ },
  { name: 'pipeline --out under a file', args: () => ['pipeline', '--out', join(p('afile'), 'sub')], line: /^labforge pipeline: out: .*afile is a file, expected a directory \(/ },
  { name: 'packer-build --output-dir is a file', args: () => ['packer-build', '--template', TEMPLATE, '--version', '1.0.0', '--output-dir', p('afile')], line: /^labforge packer-build: output-dir: .*afile is a file, expected a directory/ },
  { name: 'fetch-standard --out is a file', args: () => ['fetch-standard', '--destination', `file://${p('a-dir')}`, '--version', '1.0.0', '--appliance', 'packer/demo-lab', '--out', p('afile')], line: /^labforge fetch-standard: out: .*afile is a file, expected a directory/ },
  { name: 'pack-ova --out is a directory', args: () => ['pack-ova', '--image', p('img.qcow2'), '--version', '1.0.0', '--out', p('out.ova')], line: /^labforge pack-ova: out: .*out\.ova is a directory, expected a file/ },
  { name: 'pack-ova --out under a file', args: () => ['pack-ova', '--image', p('img.qcow2'), '--version', '1.0.0', '--out', join(p('afile'), 'x.ova')], line: /^labforge pack-ova: out: .*afile is a file, expected a directory/ },
  { name: 'vlab-warm --output is a directory', args: () => ['vlab-warm', '--image', p('img.qcow2'), '--output', p('a-dir')], line: /^labforge vlab-warm: output: .*a-dir is a directory, expected a file/ },
  { name: 'vlab-warm --output under a file', args: () => ['vlab-warm', '--image', p('img.qcow2'), '--output', join(p('afile'), 'w.qcow2')], line: /^labforge vlab-warm: output: .*afile is a file, expected a directory/ },
  { name: 'doctor --out is a file', args: () => ['doctor', '--out', p('afile')], line: /^labforge doctor: out: .*afile is a file, expected a directory/ },
  { name: 'preflight --output-dir under a file', args: () => ['preflight', '--output-dir', join(p('afile'), 'x')], line: /^labforge preflight: output-dir: .*afile is a file, expected a directory/ },
  { name: 'pack-ova --image is a directory', args: () => ['pack-ova', '--image', p('a-dir'), '--version', '1.0.0'], line: /^labforge pack-ova: image: .*a-dir is a directory, expected a file/ },

  // Empty images and files that are not Packer templates, refused before qemu-img / Packer run.
  { name: 'pack-ova --image is empty', args: () => ['pack-ova', '--image', p('empty.img'), '--version', '1.0.0'], line: /^labforge pack-ova: image: .*empty\.img is empty \(0 bytes\)/ },
  { name: 'vlab-warm --image is empty', args: () => ['vlab-warm', '--image', p('empty.img'), '--output', p('w.qcow2')], line: /^labforge vlab-warm: image: .*empty\.img is empty \(0 bytes\)/ },
  { name: 'packer-build --template is a text file', args: () => ['packer-build', '--template', p('notes.txt'), '--version', '1.0.0'], line: /^labforge packer-build: template: .*notes\.txt is not a Packer template/ },
  { name: 'packer-build --template .pkr.hcl without blocks', args: () => ['packer-build', '--template', p('junk.pkr.hcl'), '--version', '1.0.0'], line: /^labforge packer-build: template: .*junk\.pkr\.hcl is not a Packer template/ },
  { name: 'packer-build --template other JSON', args: () => ['packer-build', '--template', p('other.json'), '--version', '1.0.0'], line: /^labforge packer-build: template: .*other\.json is JSON but not a Packer template/ },
  { name: 'packer-build --template empty', args: () => ['packer-build', '--template', p('empty.img'), '--version', '1.0.0'], line: /^labforge packer-build: template: .*empty\.img is empty/ },
  { name: 'packer-build --template directory without templates', args: () => ['packer-build', '--template', p('no-templates'), '--version', '1.0.0'], line: /^labforge packer-build: template: directory .*no-templates holds no \*\.pkr\.hcl/ },

  // vlab-warm keys: parsed before anything boots.
  { name: 'encrypted key without a passphrase', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('enc.key')], line: /^labforge vlab-warm: ssh-key-path: is encrypted and no passphrase was given \(.*LABFORGE_SSH_PASSPHRASE/ },
  { name: 'encrypted key with a wrong passphrase', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('enc.key')], env: { LABFORGE_SSH_PASSPHRASE: 'wrong' }, line: /^labforge vlab-warm: ssh-key-path: the passphrase does not decrypt the key .*LABFORGE_SSH_PASSPHRASE/ },
  { name: 'damaged key', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('damaged.key')], line: /^labforge vlab-warm: ssh-key-path: is not a private key that can be used/ },
  { name: 'public key as the key', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('plain.key.pub')], line: /^labforge vlab-warm: ssh-key-path: .*plain\.key\.pub is not a private key file/ },
  { name: 'passphrase on argv', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('enc.key'), '--passphrase', 'sekrit'], line: /^labforge vlab-warm: passphrase: must not be given on the command line .*LABFORGE_SSH_PASSPHRASE/ },
  { name: 'passphrase without a key', args: () => ['vlab-warm', '--image', p('img.qcow2'), '--output', p('warm.qcow2'), '--accelerator', 'tcg', '--nested', 'false', '--cloud-init-seed', 'true'], env: { LABFORGE_SSH_PASSPHRASE: 'x' }, line: /^labforge vlab-warm: passphrase: is set but no key is given/ },

  // vlab-warm attach mode: a host that is not loopback needs its host key pinned.
  { name: 'attach to a remote host without expected-host-key', args: () => ['vlab-warm', '--attach', '10.0.0.5:22', '--ssh-key-path', p('plain.key')], line: /^labforge vlab-warm: expected-host-key: is required to attach to 10\.0\.0\.5/ },
  { name: 'attach by --host/--port without expected-host-key', args: () => ['vlab-warm', '--host', 'lab.example.com', '--port', '22', '--ssh-key-path', p('plain.key')], line: /^labforge vlab-warm: expected-host-key: is required to attach to lab\.example\.com/ },
  { name: 'expected-host-key malformed', args: () => ['vlab-warm', '--attach', '127.0.0.1:22', '--ssh-key-path', p('plain.key'), '--expected-host-key', 'MD5:aa'], line: /^labforge vlab-warm: expected-host-key: 'MD5:aa' is not a SHA256 fingerprint/ },

  // Names with spaces, quotes, $(), line breaks and non-ASCII where a name is expected.
  { name: 'ssh-user with a space', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('plain.key'), '--ssh-user', 'lab user'], line: /^labforge vlab-warm: ssh-user: 'lab user' is not a user name/ },
  { name: 'ssh-user with quotes', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('plain.key'), '--ssh-user', `o'neil"`], line: /^labforge vlab-warm: ssh-user: 'o'neil"' is not a user name/ },
  { name: 'ssh-user with $()', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('plain.key'), '--ssh-user', '$(touch /tmp/pwned)'], line: /^labforge vlab-warm: ssh-user: '\$\(touch \/tmp\/pwned\)' is not a user name/ },
  { name: 'ssh-user with a line break and a workflow command', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('plain.key'), '--ssh-user', 'lab\n::error::pwned'], line: /^labforge vlab-warm: ssh-user: .* contains a line break/ },
  { name: 'ssh-user non-ASCII', args: () => ['vlab-warm', ...warmBoot(), '--ssh-key-path', p('plain.key'), '--ssh-user', 'jürgen'], line: /^labforge vlab-warm: ssh-user: 'jürgen' is not a user name/ },
  { name: 'version with $()', args: () => ['pack-ova', '--image', p('img.qcow2'), '--version', '$(reboot)'], line: /^labforge pack-ova: version: '\$\(reboot\)' is not a semantic version/ },
  { name: 'version with a line break', args: () => ['pipeline', '--version', '1.0.0\n::warning::x'], line: /^labforge pipeline: version: .* is not a semantic version/ },
  { name: 'image name with spaces, quotes and non-ASCII', args: () => ['vlab-warm', '--image', p(`my "näme" $(x).qcow2`), '--output', p('w.qcow2')], line: /^labforge vlab-warm: image: .*my "näme" \$\(x\)\.qcow2 does not exist/ },
  { name: 'host with a line break', args: () => ['vlab-warm', '--host', 'a\n::error::b', '--port', '22', '--ssh-key-path', p('plain.key')], line: /^labforge vlab-warm: host: .* contains a line break/ },
  { name: 'ssh-diagnose username with a line break', args: () => ['ssh-diagnose', '--port', '22', '--username', 'u\n::error::x'], line: /^labforge ssh-diagnose: username: .* contains a line break/ },
  { name: 'git-sha with shell text', args: () => ['pack-ova', '--image', p('img.qcow2'), '--version', '1.0.0', '--git-sha', "'; rm -rf /"], line: /^labforge pack-ova: git-sha: .* is not a commit hash/ },

  // upload-artifact --image: the disk, the appliance and the OVA to write, all checked before packing or sending.
  { name: 'upload-artifact --image does not exist', args: () => packUpload({ image: p('absent.qcow2') }), line: /^labforge upload-artifact: image: .*absent\.qcow2 does not exist \(give the path of the disk image to pack/ },
  { name: 'upload-artifact --image is a directory', args: () => packUpload({ image: p('a-dir') }), line: /^labforge upload-artifact: image: .*a-dir is a directory, expected a file/ },
  { name: 'upload-artifact --image /dev/zero', args: () => packUpload({ image: '/dev/zero' }), line: /^labforge upload-artifact: image: \/dev\/zero is not a regular file/ },
  { name: 'upload-artifact --image is a text file', args: () => packUpload({ image: p('notes.qcow2') }), line: /^labforge upload-artifact: image: .*notes\.qcow2 is not a disk image/ },
  { name: 'upload-artifact --image is a FIFO', args: () => packUpload({ image: p('pipe.qcow2') }), line: /^labforge upload-artifact: image: .*pipe\.qcow2 is not a regular file/ },
  { name: 'upload-artifact --image without --appliance-dir', args: () => packUpload({ 'appliance-dir': undefined }), line: /^labforge upload-artifact: appliance-dir: is required with image \(give the directory holding appliance\.yml/ },
  { name: 'upload-artifact --appliance-dir without appliance.yml', args: () => packUpload({ 'appliance-dir': p('a-dir') }), line: /^labforge upload-artifact: appliance-dir: .*a-dir\/appliance\.yml does not exist/ },
  { name: 'upload-artifact --profile unknown', args: () => packUpload({ profile: 'huge' }), line: /^labforge upload-artifact: profile: 'huge' is not a resource profile of demo-lab \(use one of: / },
  { name: 'upload-artifact --image with a --path not ending in .ova', args: () => packUpload({ path: join(p('ova-out'), 'demo-lab.tar') }), line: /^labforge upload-artifact: path: '.*demo-lab\.tar' does not end in \.ova/ },
  { name: 'upload-artifact --profile without --image', args: () => ['upload-artifact', '--path', p('img.qcow2'), '--destination', `file://${p('a-dir')}`, '--profile', 'tiny'], line: /^labforge upload-artifact: profile: is set without image/ },
  { name: 'upload-artifact --appliance-dir without --image', args: () => ['upload-artifact', '--path', p('img.qcow2'), '--destination', `file://${p('a-dir')}`, '--appliance-dir', 'packer/demo-lab'], line: /^labforge upload-artifact: appliance-dir: is set without image/ },
];

/** Runs every case once, two at a time (two CPU cores serve the whole machine), before the assertions. */
const POOL = 2;
const results = new Map<string, CliRun & { times: BadInputTimes; second?: BadInputTimes }>();
const runCase = (c: (typeof cases)[number]) => timeBadInput((killMs) => runCli(c.args(), { env: c.env ?? {}, timeoutMs: killMs, measureCpu: true }));
async function runAll(): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++];
      const { run, times } = await runCase(c);
      results.set(c.name, { ...run, times });
    }
  };
  await Promise.all(Array.from({ length: POOL }, worker));
  // Slow only because of load: once more, alone (see needsSecondRun).
  for (const c of cases) {
    const r = results.get(c.name)!;
    if (needsSecondRun(r.times)) r.second = (await runCase(c)).times;
  }
}

describe('labforge answers bad input with one line and exit code 2', () => {
  beforeAll(runAll, 900_000);

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const run = results.get(c.name)!;
    const lines = run.stderr.split('\n').filter((l) => l !== '');
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/\n$/) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(c.line);
    expect(run.stderr).not.toMatch(/^\s+at |Error: |TypeError/m);
    expect(run.stderr).not.toMatch(/^::/m);
    expect(run.stdout).toBe('');
    expectWithinBadInputBound(run.times, run.second);
  });
});

describe('vlab-warm key checks in the lib', () => {
  it('accepts an encrypted key with its passphrase, and keeps the passphrase for SSH', () => {
    const opts = readWarmOptions(inputsFrom({ image: p('img.qcow2'), output: p('warm.qcow2'), accelerator: 'tcg', nested: 'false', 'ssh-key-path': p('enc.key'), passphrase: 'sekrit' }));
    expect(opts.sshPassphrase).toBe('sekrit');
    expect(opts.sshKey).toMatch(/BEGIN OPENSSH PRIVATE KEY/);
  });

  it('accepts attaching to a remote host when its host key is pinned', () => {
    const opts = readWarmOptions(inputsFrom({ host: '10.0.0.5', port: '22', 'ssh-key-path': p('plain.key'), 'expected-host-key': FP }));
    expect(opts.attach).toEqual({ host: '10.0.0.5', port: 22 });
    expect(opts.expectedHostKey).toBe(FP);
  });

  it('warns about a key file readable by others, not about a 0600 one', () => {
    expect(keyFileModeWarning(p('plain.key'))).toBe('');
    writeFileSync(p('open.key'), 'x');
    chmodSync(p('open.key'), 0o644);
    expect(keyFileModeWarning(p('open.key'))).toMatch(/^warning: ssh-key-path .*open\.key has mode 0644 \(readable by others\): OpenSSH refuses such a key; run chmod 600 /);
  });
});
