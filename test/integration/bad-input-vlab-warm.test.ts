/**
 * Bad input to the bundled vlab-warm action (issue 15): every input gets bad values, each refused before
 * QEMU boots with exit 1 and one `::error` line naming the input, within 5 s, and neither the key nor its
 * passphrase ever printed (see badInputTable in test/support/input-error.ts).
 */
import { afterAll, beforeAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { badInputTable, type BadInputCase } from '../support/input-error.js';

const dir = mkdtempSync(join(tmpdir(), 'labforge-bad-warm-'));
const p = (name: string) => join(dir, name);
const PASSPHRASE = 'pp-warm-S3cret-5521';
const REGISTRY_TOKEN = 'ghp-token-only';
// The keys are made when the file loads: the table's list of never-shown values holds their lines.
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'plain', '-f', p('plain.key')]);
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', PASSPHRASE, '-C', 'enc', '-f', p('enc.key')]);
chmodSync(p('plain.key'), 0o600);
chmodSync(p('enc.key'), 0o600);
const plainKey = readFileSync(p('plain.key'), 'utf8');
const keyLines = (key: string) => key.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));

beforeAll(() => {
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', p('img.qcow2'), '64M']);
  writeFileSync(p('empty.qcow2'), '');
  writeFileSync(p('text.qcow2'), 'not a disk\n');
  writeFileSync(p('gone.qcow2'), 'x');
  writeFileSync(p('afile'), 'x');
  symlinkSync(p('vanished-target'), p('dangling.qcow2'));
  symlinkSync('/dev/zero', p('zero.qcow2'));
  mkdirSync(p('a-dir'));
  execFileSync('mkfifo', [p('fifo')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Small: should a bad value be accepted, the VM it boots is small (and the post: phase stops it).
const boot = () => ({ image: p('img.qcow2'), output: p('warm.qcow2'), accelerator: 'tcg', nested: 'false', 'ssh-key-path': p('plain.key'), memory: '256', cpus: '1' });
const attach = () => ({ host: '127.0.0.1', port: '2222', 'ssh-key-path': p('plain.key') });
const FP = 'SHA256:' + 'A'.repeat(43);

const cases: BadInputCase[] = [
  // appliance, profile
  { name: 'does not exist', input: 'appliance', inputs: () => ({ ...boot(), appliance: p('nowhere') }) },
  { name: 'a directory without appliance.yml', input: 'appliance', inputs: () => ({ ...boot(), appliance: p('a-dir') }) },
  { name: '/dev/zero', input: 'appliance', inputs: () => ({ ...boot(), appliance: '/dev/zero' }) },
  { name: 'with a line break', input: 'appliance', inputs: () => ({ ...boot(), appliance: 'packer/demo-lab\n::error::pwned' }) },
  { name: 'not in the manifest', input: 'profile', inputs: () => ({ ...boot(), appliance: 'packer/demo-lab', profile: 'huge' }) },
  { name: 'without an appliance', input: 'profile', inputs: () => ({ ...boot(), profile: 'small' }) },
  // image
  { name: 'does not exist', input: 'image', inputs: () => ({ ...boot(), image: p('missing.qcow2') }) },
  { name: 'a name with spaces, quotes, $() and non-ASCII that does not exist', input: 'image', inputs: () => ({ ...boot(), image: p('my "ïmage" $(x).qcow2') }) },
  { name: 'a directory', input: 'image', inputs: () => ({ ...boot(), image: p('a-dir') }) },
  { name: 'empty', input: 'image', inputs: () => ({ ...boot(), image: p('empty.qcow2') }) },
  { name: 'a text file', input: 'image', inputs: () => ({ ...boot(), image: p('text.qcow2') }) },
  { name: '/dev/zero', input: 'image', inputs: () => ({ ...boot(), image: '/dev/zero' }) },
  { name: '/dev/urandom', input: 'image', inputs: () => ({ ...boot(), image: '/dev/urandom' }) },
  { name: 'a symlink to /dev/zero', input: 'image', inputs: () => ({ ...boot(), image: p('zero.qcow2') }) },
  { name: 'a FIFO (a read would never end)', input: 'image', inputs: () => ({ ...boot(), image: p('fifo') }) },
  { name: 'a symlink whose target is gone', input: 'image', inputs: () => ({ ...boot(), image: p('dangling.qcow2') }) },
  { name: 'a file removed before the step reads it', input: 'image', inputs: () => ({ ...boot(), image: p('gone.qcow2') }), before: () => rmSync(p('gone.qcow2'), { force: true }) },
  { name: 'missing in boot mode', input: 'image', inputs: () => ({ ...boot(), image: '' }) },
  { name: 'given with host and port', input: 'image', inputs: () => ({ ...attach(), image: p('img.qcow2') }) },
  // output
  { name: 'missing', input: 'output', inputs: () => ({ ...boot(), output: '' }) },
  { name: 'the same as image', input: 'output', inputs: () => ({ ...boot(), output: p('img.qcow2') }) },
  { name: 'a directory', input: 'output', inputs: () => ({ ...boot(), output: p('a-dir') }) },
  { name: 'under a file', input: 'output', inputs: () => ({ ...boot(), output: join(p('afile'), 'w.qcow2') }) },
  { name: 'in a directory that does not exist', input: 'output', inputs: () => ({ ...boot(), output: p('no-dir/w.qcow2') }) },
  { name: 'given in attach mode', input: 'output', inputs: () => ({ ...attach(), output: p('w.qcow2') }) },
  // host, port
  { name: 'with a line break and a workflow command', input: 'host', inputs: () => ({ ...attach(), host: '127.0.0.1\n::error::pwned' }) },
  { name: 'empty with a port', input: 'host', inputs: () => ({ ...attach(), host: '' }) },
  { name: 'empty with a host', input: 'port', inputs: () => ({ ...attach(), port: '' }) },
  { name: 'zero', input: 'port', inputs: () => ({ ...attach(), port: '0' }) },
  { name: 'above 65535', input: 'port', inputs: () => ({ ...attach(), port: '99999' }) },
  // accelerator, nested
  { name: 'unknown', input: 'accelerator', inputs: () => ({ ...boot(), accelerator: 'hvf' }) },
  { name: 'with $()', input: 'accelerator', inputs: () => ({ ...boot(), accelerator: '$(id)' }) },
  { name: 'true under tcg', input: 'nested', inputs: () => ({ ...boot(), nested: 'true' }) },
  { name: 'not a boolean', input: 'nested', inputs: () => ({ ...boot(), nested: 'deep' }) },
  // memory, cpus
  { name: 'below 256', input: 'memory', inputs: () => ({ ...boot(), memory: '128' }) },
  { name: 'with a unit', input: 'memory', inputs: () => ({ ...boot(), memory: '4G' }) },
  { name: 'zero', input: 'cpus', inputs: () => ({ ...boot(), cpus: '0' }) },
  { name: 'non-ASCII digits', input: 'cpus', inputs: () => ({ ...boot(), cpus: '２' }) },
  // ssh-user
  { name: 'with a space', input: 'ssh-user', inputs: () => ({ ...boot(), 'ssh-user': 'lab user' }) },
  { name: 'with $()', input: 'ssh-user', inputs: () => ({ ...boot(), 'ssh-user': '$(reboot)' }) },
  { name: 'with a line break', input: 'ssh-user', inputs: () => ({ ...boot(), 'ssh-user': 'lab\n::error::pwned' }) },
  { name: 'non-ASCII', input: 'ssh-user', inputs: () => ({ ...boot(), 'ssh-user': 'jürgen' }) },
  // ssh-key, ssh-key-path, passphrase
  { name: 'not a key', input: 'ssh-key', inputs: () => ({ ...boot(), 'ssh-key-path': '', 'ssh-key': 'hello' }) },
  { name: 'together with ssh-key-path', input: 'ssh-key', inputs: () => ({ ...boot(), 'ssh-key': plainKey }) },
  { name: 'no key at all', input: 'ssh-key-path', inputs: () => ({ ...boot(), 'ssh-key-path': '' }) },
  { name: 'does not exist', input: 'ssh-key-path', inputs: () => ({ ...boot(), 'ssh-key-path': p('missing.key') }) },
  { name: 'the public key', input: 'ssh-key-path', inputs: () => ({ ...boot(), 'ssh-key-path': p('plain.key.pub') }) },
  { name: 'a directory', input: 'ssh-key-path', inputs: () => ({ ...boot(), 'ssh-key-path': p('a-dir') }) },
  { name: '/dev/zero', input: 'ssh-key-path', message: /not a regular file/, inputs: () => ({ ...boot(), 'ssh-key-path': '/dev/zero' }) },
  { name: '/dev/urandom', input: 'ssh-key-path', message: /not a regular file/, inputs: () => ({ ...boot(), 'ssh-key-path': '/dev/urandom' }) },
  { name: 'a FIFO (a read would never end)', input: 'ssh-key-path', message: /not a regular file/, inputs: () => ({ ...boot(), 'ssh-key-path': p('fifo') }) },
  { name: 'encrypted, without a passphrase', input: 'ssh-key-path', inputs: () => ({ ...boot(), 'ssh-key-path': p('enc.key') }) },
  { name: 'a wrong passphrase', input: 'ssh-key-path', inputs: () => ({ ...boot(), 'ssh-key-path': p('enc.key'), passphrase: 'wrong-pp-S3cret' }) },
  { name: 'given without a key', input: 'passphrase', inputs: () => ({ ...boot(), 'ssh-key-path': '', 'cloud-init-seed': 'true', passphrase: PASSPHRASE }) },
  // expected-host-key, cloud-init-seed
  { name: 'missing for a remote host', input: 'expected-host-key', inputs: () => ({ ...attach(), host: '10.0.0.5' }) },
  { name: 'an MD5 fingerprint', input: 'expected-host-key', inputs: () => ({ ...attach(), 'expected-host-key': 'MD5:aa:bb' }) },
  { name: 'with a line break', input: 'expected-host-key', inputs: () => ({ ...attach(), 'expected-host-key': `${FP}\n::error::x` }) },
  { name: 'in attach mode', input: 'cloud-init-seed', inputs: () => ({ ...attach(), 'cloud-init-seed': 'true' }) },
  { name: 'not a boolean', input: 'cloud-init-seed', inputs: () => ({ ...boot(), 'cloud-init-seed': 'cidata' }) },
  // commands
  { name: 'with a terminal escape', input: 'init-command', inputs: () => ({ ...boot(), 'init-command': 'init \x1b]0;x\x07' }) },
  { name: 'with a carriage return', input: 'ready-command', inputs: () => ({ ...boot(), 'ready-command': 'true\r::error::pwned' }) },
  { name: 'with a terminal escape', input: 'status-command', inputs: () => ({ ...boot(), 'status-command': 'status \x1b[2J' }) },
  { name: 'with a terminal escape', input: 'seal-command', inputs: () => ({ ...boot(), 'seal-command': 'seal \x1b[2J' }) },
  { name: 'not a boolean', input: 'seal', inputs: () => ({ ...boot(), seal: 'closed' }) },
  // timeouts
  { name: 'zero', input: 'init-timeout-minutes', inputs: () => ({ ...boot(), 'init-timeout-minutes': '0' }) },
  { name: 'a word', input: 'ready-timeout-minutes', inputs: () => ({ ...boot(), 'ready-timeout-minutes': 'soon' }) },
  { name: 'above 240', input: 'ssh-timeout-minutes', inputs: () => ({ ...boot(), 'ssh-timeout-minutes': '241' }) },
  { name: 'below 5', input: 'shutdown-timeout-seconds', inputs: () => ({ ...boot(), 'shutdown-timeout-seconds': '1' }) },
  // marker-path, manifest-path
  { name: 'relative', input: 'marker-path', inputs: () => ({ ...boot(), 'marker-path': 'etc/build-type' }) },
  { name: 'with $()', input: 'marker-path', inputs: () => ({ ...boot(), 'marker-path': '$(reboot)' }) },
  { name: 'relative', input: 'manifest-path', inputs: () => ({ ...boot(), 'manifest-path': 'warm.json' }) },
  // qemu-args, sbom, version
  { name: 'broken JSON', input: 'qemu-args', inputs: () => ({ ...boot(), 'qemu-args': '["-kernel", ' }) },
  { name: 'a JSON array of numbers', input: 'qemu-args', inputs: () => ({ ...boot(), 'qemu-args': '[1, 2]' }) },
  { name: 'not .cdx.json', input: 'sbom', inputs: () => ({ ...boot(), sbom: p('sbom.txt') }) },
  { name: 'in a directory that does not exist', input: 'sbom', inputs: () => ({ ...boot(), sbom: p('no-dir/x.cdx.json') }) },
  { name: 'a token without USER:', input: 'registry-credential', message: /is not USER:TOKEN/, inputs: () => ({ ...boot(), 'registry-credential': REGISTRY_TOKEN }) },
  { name: 'not semver', input: 'version', inputs: () => ({ ...boot(), version: '1.0' }) },
  { name: 'with a line break', input: 'version', inputs: () => ({ ...boot(), version: '1.0.0\n::error::x' }) },
];

badInputTable('vlab-warm', cases, { neverShown: [PASSPHRASE, REGISTRY_TOKEN, 'wrong-pp-S3cret', ...keyLines(plainKey)] });
