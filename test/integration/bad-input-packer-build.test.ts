/**
 * Bad input to the bundled packer-build action (issue 15): every input gets bad values, each refused before
 * Packer runs with exit 1 and one `::error` line naming the input, within 5 s, and none of the secrets
 * (console password, registry credential, GitHub token, SSH password) ever printed
 * (see badInputTable in test/support/input-error.ts).
 */
import { afterAll, beforeAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { badInputTable, type BadInputCase } from '../support/input-error.js';
import { repoRoot } from '../support/run-action.js';

const dir = mkdtempSync(join(tmpdir(), 'labforge-bad-packer-'));
const p = (name: string) => join(dir, name);
const TEMPLATE = join(repoRoot, 'test', 'fixtures', 'packer', 'fast', 'image.pkr.hcl');

beforeAll(() => {
  writeFileSync(p('empty'), '');
  writeFileSync(p('notes.txt'), 'hello\n');
  writeFileSync(p('afile'), 'a file\n');
  writeFileSync(p('gone.pkr.hcl'), 'source "null" "x" {}\n');
  writeFileSync(p('bad.pkrvars.hcl'), 'this is = = not hcl\n');
  symlinkSync(p('vanished-target'), p('dangling.pkr.hcl'));
  symlinkSync('/dev/zero', p('zero.pkr.hcl'));
  mkdirSync(p('a-dir'));
  execFileSync('mkfifo', [p('fifo.pkr.hcl')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Sizes this machine has: the preflight passes, so a value checked after it is reached too.
const t = () => ({ template: TEMPLATE, version: '1.0.0', accelerator: 'tcg', 'output-dir': p('out'), 'expected-image-gib': '1', 'vm-memory-mib': '128' });
/** An appliance build also takes the appliance-only secrets: they must never be printed either. */
const a = () => ({ appliance: join(repoRoot, 'packer', 'demo-lab'), version: '1.0.0', accelerator: 'tcg', 'output-dir': p('out'), 'console-password': CONSOLE, 'registry-credential': REGISTRY });
const CONSOLE = 'pw-console-S3cret';
const REGISTRY = 'user:ghcr-token-S3cret';

const cases: BadInputCase[] = [
  // appliance, template
  { name: 'does not exist', input: 'appliance', inputs: () => ({ ...a(), appliance: p('nowhere') }) },
  { name: 'a directory without appliance.yml', input: 'appliance', inputs: () => ({ ...a(), appliance: p('a-dir') }) },
  { name: 'a name with spaces, quotes, $() and non-ASCII', input: 'appliance', inputs: () => ({ ...a(), appliance: p('my "läb" $(x)') }) },
  { name: 'with a line break', input: 'appliance', inputs: () => ({ ...a(), appliance: 'packer/demo-lab\n::error::pwned' }) },
  { name: '/dev/zero', input: 'appliance', inputs: () => ({ ...a(), appliance: '/dev/zero' }) },
  { name: 'given with appliance', input: 'template', inputs: () => ({ ...a(), template: TEMPLATE }) },
  { name: 'neither appliance nor template', input: 'appliance', inputs: () => ({ version: '1.0.0' }) },
  { name: 'does not exist', input: 'template', inputs: () => ({ ...t(), template: p('missing.pkr.hcl') }) },
  { name: 'a text file', input: 'template', inputs: () => ({ ...t(), template: p('notes.txt') }) },
  { name: 'empty', input: 'template', inputs: () => ({ ...t(), template: p('empty') }) },
  { name: 'a directory without templates', input: 'template', inputs: () => ({ ...t(), template: p('a-dir') }) },
  { name: '/dev/zero', input: 'template', inputs: () => ({ ...t(), template: '/dev/zero' }) },
  { name: '/dev/urandom', input: 'template', inputs: () => ({ ...t(), template: '/dev/urandom' }) },
  { name: 'a symlink to /dev/zero', input: 'template', inputs: () => ({ ...t(), template: p('zero.pkr.hcl') }) },
  { name: 'a FIFO (a read would never end)', input: 'template', inputs: () => ({ ...t(), template: p('fifo.pkr.hcl') }) },
  { name: 'a symlink whose target is gone', input: 'template', inputs: () => ({ ...t(), template: p('dangling.pkr.hcl') }) },
  { name: 'a file removed before the step reads it', input: 'template', inputs: () => ({ ...t(), template: p('gone.pkr.hcl') }), before: () => rmSync(p('gone.pkr.hcl'), { force: true }) },
  // profile, cpus, memory-mib, disk-gib
  { name: 'not in the manifest', input: 'profile', inputs: () => ({ ...a(), profile: 'huge' }) },
  { name: 'with $()', input: 'profile', inputs: () => ({ ...a(), profile: '$(id)' }) },
  { name: 'zero', input: 'cpus', inputs: () => ({ ...a(), cpus: '0' }) },
  { name: 'a word', input: 'cpus', inputs: () => ({ ...a(), cpus: 'four' }) },
  { name: 'negative', input: 'memory-mib', inputs: () => ({ ...a(), 'memory-mib': '-1' }) },
  { name: 'with a unit', input: 'memory-mib', inputs: () => ({ ...a(), 'memory-mib': '4G' }) },
  { name: 'zero', input: 'disk-gib', inputs: () => ({ ...a(), 'disk-gib': '0' }) },
  { name: 'a fraction', input: 'disk-gib', inputs: () => ({ ...a(), 'disk-gib': '1.5' }) },
  // console-password, registry-credential, github-token, ssh-password (secrets)
  { name: 'with a line break', input: 'console-password', inputs: () => ({ ...a(), 'console-password': `${CONSOLE}\nline-two-S3cret` }) },
  { name: 'without USER:', input: 'registry-credential', inputs: () => ({ ...a(), 'registry-credential': 'ghp-token-only-S3cret' }) },
  { name: 'with a line break', input: 'github-token', inputs: () => ({ ...t(), 'github-token': 'ghp_token_S3cret\n::error::x' }) },
  { name: 'with a line break', input: 'ssh-password', inputs: () => ({ ...t(), 'ssh-password': 'pw-ssh-S3cret\nline-two' }) },
  // validate-only, plugin-cache, keep-intermediates (booleans)
  { name: 'not a boolean', input: 'validate-only', inputs: () => ({ ...t(), 'validate-only': 'maybe' }) },
  { name: 'not a boolean', input: 'plugin-cache', inputs: () => ({ ...t(), 'plugin-cache': 'cached' }) },
  { name: 'not a boolean', input: 'keep-intermediates', inputs: () => ({ ...t(), 'keep-intermediates': 'keep' }) },
  // build-type, version
  { name: 'unknown', input: 'build-type', inputs: () => ({ ...t(), 'build-type': 'warm' }) },
  { name: 'with a line break', input: 'build-type', inputs: () => ({ ...t(), 'build-type': 'standard\n::error::x' }) },
  { name: 'empty', input: 'version', inputs: () => ({ ...t(), version: '' }) },
  { name: 'not semver', input: 'version', inputs: () => ({ ...t(), version: '1.0' }) },
  { name: 'with $()', input: 'version', inputs: () => ({ ...t(), version: '$(reboot)' }) },
  { name: 'non-ASCII', input: 'version', inputs: () => ({ ...t(), version: '1.0.0-ß' }) },
  // vars, var-files, only
  { name: 'a line without =', input: 'vars', inputs: () => ({ ...t(), vars: 'just-a-word' }) },
  { name: 'an empty key', input: 'vars', inputs: () => ({ ...t(), vars: '=value' }) },
  { name: 'a key with a space', input: 'vars', inputs: () => ({ ...t(), vars: 'my var=1' }) },
  { name: 'does not exist', input: 'var-files', inputs: () => ({ ...t(), 'var-files': p('missing.pkrvars.hcl') }) },
  { name: 'a directory', input: 'var-files', inputs: () => ({ ...t(), 'var-files': p('a-dir') }) },
  { name: '/dev/zero', input: 'var-files', inputs: () => ({ ...t(), 'var-files': '/dev/zero' }) },
  { name: 'with $()', input: 'only', inputs: () => ({ ...t(), only: '$(id)' }) },
  { name: 'with a line break', input: 'only', inputs: () => ({ ...t(), only: 'qemu.x\n::error::pwned' }) },
  // accelerator, on-error, package
  { name: 'unknown', input: 'accelerator', inputs: () => ({ ...t(), accelerator: 'hvf' }) },
  { name: 'capitalized', input: 'accelerator', inputs: () => ({ ...t(), accelerator: 'KVM' }) },
  { name: 'unknown', input: 'on-error', inputs: () => ({ ...t(), 'on-error': 'ask' }) },
  { name: 'unknown', input: 'package', inputs: () => ({ ...t(), package: 'zip' }) },
  // timeout-minutes, expected-image-gib, vm-memory-mib, ssh-watchdog-seconds
  { name: 'zero', input: 'timeout-minutes', inputs: () => ({ ...t(), 'timeout-minutes': '0' }) },
  { name: 'a word', input: 'timeout-minutes', inputs: () => ({ ...t(), 'timeout-minutes': 'long' }) },
  { name: 'negative', input: 'expected-image-gib', inputs: () => ({ ...t(), 'expected-image-gib': '-40' }) },
  { name: 'a word', input: 'vm-memory-mib', inputs: () => ({ ...t(), 'vm-memory-mib': 'lots' }) },
  { name: 'negative', input: 'ssh-watchdog-seconds', inputs: () => ({ ...t(), 'ssh-watchdog-seconds': '-5' }) },
  // cache-dir, output-dir
  { name: 'a file', input: 'cache-dir', inputs: () => ({ ...t(), 'cache-dir': p('afile') }) },
  { name: 'a file', input: 'output-dir', inputs: () => ({ ...t(), 'output-dir': p('afile') }) },
  { name: 'under a file', input: 'output-dir', inputs: () => ({ ...t(), 'output-dir': join(p('afile'), 'sub') }) },
  // ssh-username, ssh-private-key-file, kvm-device
  { name: 'with a line break and a workflow command', input: 'ssh-username', inputs: () => ({ ...t(), 'ssh-username': 'packer\n::error::pwned' }) },
  { name: 'with a space', input: 'ssh-username', inputs: () => ({ ...t(), 'ssh-username': 'lab user' }) },
  { name: 'does not exist', input: 'ssh-private-key-file', inputs: () => ({ ...t(), 'ssh-private-key-file': p('missing.key') }) },
  { name: '/dev/urandom', input: 'ssh-private-key-file', inputs: () => ({ ...t(), 'ssh-private-key-file': '/dev/urandom' }) },
  { name: 'a regular file, not a device (and never told to remove it)', input: 'kvm-device', names: /^preflight kvm: kvm-device \S+afile is a regular file, not the KVM device \(character device 10:232\) \(fix: give the KVM device in kvm-device/, inputs: () => ({ ...t(), accelerator: 'kvm', 'kvm-device': p('afile') }) },
  { name: '/dev/null, a character device that is not KVM', input: 'kvm-device', names: /^preflight kvm: kvm-device \/dev\/null is character device 1:3, not the KVM device/, inputs: () => ({ ...t(), accelerator: 'kvm', 'kvm-device': '/dev/null' }) },
  { name: 'does not exist', input: 'kvm-device', names: /^preflight kvm: \S+no-kvm does not exist/, inputs: () => ({ ...t(), accelerator: 'kvm', 'kvm-device': p('no-kvm') }) },
];

badInputTable('packer-build', cases, {
  secretInputs: { 'github-token': 'ghp_token_S3cret', 'ssh-password': 'pw-ssh-S3cret' },
  neverShown: [CONSOLE, REGISTRY, 'ghcr-token-S3cret', 'line-two-S3cret', 'ghp-token-only-S3cret'],
});
