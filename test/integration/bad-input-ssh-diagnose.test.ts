/**
 * Bad input to the bundled ssh-diagnose action (issue 15): every input gets bad values, each refused before
 * any connection with exit 1 and one `::error` line naming the input, within 5 s, and no password, key or
 * passphrase ever printed (see badInputTable in test/support/input-error.ts).
 */
import { afterAll, beforeAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { badInputTable, type BadInputCase } from '../support/input-error.js';

const dir = mkdtempSync(join(tmpdir(), 'labforge-bad-ssh-'));
const p = (name: string) => join(dir, name);
const PASSWORD = 'pw-S3cr3t-never-shown-4471';
const PASSPHRASE = 'pp-S3cr3t-never-shown-8812';
// The keys are made when the file loads: the table's list of never-shown values holds their lines.
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'plain', '-f', p('plain.key')]);
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', PASSPHRASE, '-C', 'enc', '-f', p('enc.key')]);
chmodSync(p('plain.key'), 0o600);
const plainKey = readFileSync(p('plain.key'), 'utf8');
const encKey = readFileSync(p('enc.key'), 'utf8');
/** The base64 lines of a private key (each one is secret). */
const keyLines = (key: string) => key.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));

beforeAll(() => {
  writeFileSync(p('empty'), '');
  writeFileSync(p('text'), 'not a key\n');
  writeFileSync(p('gone'), plainKey);
  symlinkSync(p('vanished-target'), p('dangling'));
  symlinkSync('/dev/zero', p('zero-link'));
  mkdirSync(p('a-dir'));
  execFileSync('mkfifo', [p('fifo')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const u = { username: 'lab' };
const FP = 'SHA256:' + 'A'.repeat(43);

const cases: BadInputCase[] = [
  // host
  { name: 'with a space', input: 'host', inputs: () => ({ ...u, host: 'lab host' }) },
  { name: 'with a line break and a workflow command', input: 'host', inputs: () => ({ ...u, host: '127.0.0.1\n::error::pwned' }) },
  { name: 'with $()', input: 'host', inputs: () => ({ ...u, host: '$(touch /tmp/x)' }) },
  { name: 'with quotes', input: 'host', inputs: () => ({ ...u, host: `"lab'host"` }) },
  { name: 'non-ASCII', input: 'host', inputs: () => ({ ...u, host: 'höst.example' }) },
  { name: 'a URL', input: 'host', inputs: () => ({ ...u, host: 'ssh://127.0.0.1:22' }) },
  // port
  { name: 'zero', input: 'port', inputs: () => ({ ...u, port: '0' }) },
  { name: 'above 65535', input: 'port', inputs: () => ({ ...u, port: '65536' }) },
  { name: 'negative', input: 'port', inputs: () => ({ ...u, port: '-22' }) },
  { name: 'a word', input: 'port', inputs: () => ({ ...u, port: 'ssh' }) },
  { name: 'a fraction', input: 'port', inputs: () => ({ ...u, port: '22.5' }) },
  { name: 'with a line break', input: 'port', inputs: () => ({ ...u, port: '22\n::error::x' }) },
  // username
  { name: 'empty', input: 'username', inputs: () => ({ username: '' }) },
  { name: 'with a line break and a workflow command', input: 'username', inputs: () => ({ username: 'bob\n::error::pwned' }) },
  { name: 'with a space', input: 'username', inputs: () => ({ username: 'lab user' }) },
  { name: 'with quotes', input: 'username', inputs: () => ({ username: `o'neil"` }) },
  { name: 'with $()', input: 'username', inputs: () => ({ username: '$(reboot)' }) },
  { name: 'non-ASCII', input: 'username', inputs: () => ({ username: 'jürgen' }) },
  { name: 'with a terminal escape', input: 'username', inputs: () => ({ username: 'lab\x1b]0;x\x07' }) },
  // password
  { name: 'with a line break (cannot be masked line by line)', input: 'password', inputs: () => ({ ...u, password: `${PASSWORD}\nsecond-line-${PASSWORD}` }) },
  // private-key
  { name: 'not a key', input: 'private-key', inputs: () => ({ ...u, 'private-key': 'hello world' }) },
  { name: 'a public key', input: 'private-key', inputs: () => ({ ...u, 'private-key': readFileSync(p('plain.key.pub'), 'utf8') }) },
  { name: 'encrypted, without a passphrase', input: 'private-key', inputs: () => ({ ...u, 'private-key': encKey }) },
  { name: 'encrypted, with a wrong passphrase', input: 'private-key', inputs: () => ({ ...u, 'private-key': encKey, passphrase: 'wrong-pp-value-9' }) },
  { name: 'damaged base64 (a line cut out)', input: 'private-key', inputs: () => ({ ...u, 'private-key': plainKey.split('\n').filter((_l, i) => i !== 2).join('\n') }) },
  { name: 'together with private-key-path', input: 'private-key', inputs: () => ({ ...u, 'private-key': plainKey, 'private-key-path': p('plain.key') }) },
  // private-key-path
  { name: 'does not exist', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('missing') }) },
  { name: 'a name with spaces, quotes, $() and non-ASCII that does not exist', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('my "këy" $(x)') }) },
  { name: 'a directory', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('a-dir') }) },
  { name: 'an empty file', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('empty') }) },
  { name: 'a text file', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('text') }) },
  { name: 'the public key', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('plain.key.pub') }) },
  { name: '/dev/zero', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': '/dev/zero' }) },
  { name: '/dev/urandom', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': '/dev/urandom' }) },
  { name: 'a symlink to /dev/zero', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('zero-link') }) },
  { name: 'a symlink whose target is gone', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('dangling') }) },
  { name: 'a file removed before the step reads it', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('gone') }), before: () => rmSync(p('gone'), { force: true }) },
  { name: 'a path with a line break that does not exist', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': `${p('x')}\n::error::pwned` }) },
  { name: 'a FIFO (a read would never end)', input: 'private-key-path', inputs: () => ({ ...u, 'private-key-path': p('fifo') }) },
  // passphrase
  { name: 'given without a key', input: 'passphrase', inputs: () => ({ ...u, passphrase: PASSPHRASE }) },
  { name: 'with a line break', input: 'passphrase', inputs: () => ({ ...u, 'private-key-path': p('enc.key'), passphrase: `${PASSPHRASE}\nmore` }) },
  // expected-host-key
  { name: 'an MD5 fingerprint', input: 'expected-host-key', inputs: () => ({ ...u, 'expected-host-key': 'MD5:aa:bb:cc' }) },
  { name: 'too short', input: 'expected-host-key', inputs: () => ({ ...u, 'expected-host-key': 'SHA256:abc' }) },
  { name: 'with a line break and a workflow command', input: 'expected-host-key', inputs: () => ({ ...u, 'expected-host-key': `${FP}\n::error::pwned` }) },
  { name: 'with $()', input: 'expected-host-key', inputs: () => ({ ...u, 'expected-host-key': '$(cat /etc/shadow)' }) },
  { name: 'a whole ssh-keygen -lf line', input: 'expected-host-key', inputs: () => ({ ...u, 'expected-host-key': `256 ${FP} root@host (ED25519)` }) },
  // pubkey-algorithms
  { name: 'an unknown algorithm', input: 'pubkey-algorithms', inputs: () => ({ ...u, 'pubkey-algorithms': 'rsa-sha3' }) },
  { name: 'a non-RSA algorithm', input: 'pubkey-algorithms', inputs: () => ({ ...u, 'pubkey-algorithms': 'ssh-ed25519' }) },
  { name: 'with a line break and a workflow command', input: 'pubkey-algorithms', inputs: () => ({ ...u, 'pubkey-algorithms': 'ssh-rsa\n::error::pwned' }) },
  // timeout-seconds, wait-seconds
  { name: 'zero', input: 'timeout-seconds', inputs: () => ({ ...u, 'timeout-seconds': '0' }) },
  { name: 'above 600', input: 'timeout-seconds', inputs: () => ({ ...u, 'timeout-seconds': '601' }) },
  { name: 'with a unit', input: 'timeout-seconds', inputs: () => ({ ...u, 'timeout-seconds': '10s' }) },
  { name: 'negative', input: 'wait-seconds', inputs: () => ({ ...u, 'wait-seconds': '-1' }) },
  { name: 'a word', input: 'wait-seconds', inputs: () => ({ ...u, 'wait-seconds': 'forever' }) },
  { name: 'above a day', input: 'wait-seconds', inputs: () => ({ ...u, 'wait-seconds': '86401' }) },
  // serial-log
  { name: 'a directory', input: 'serial-log', inputs: () => ({ ...u, 'serial-log': p('a-dir') }) },
  { name: '/dev/zero', input: 'serial-log', inputs: () => ({ ...u, 'serial-log': '/dev/zero' }) },
  { name: '/dev/urandom', input: 'serial-log', inputs: () => ({ ...u, 'serial-log': '/dev/urandom' }) },
  { name: 'a symlink to /dev/zero', input: 'serial-log', inputs: () => ({ ...u, 'serial-log': p('zero-link') }) },
  { name: 'a FIFO (a read would never end)', input: 'serial-log', inputs: () => ({ ...u, 'serial-log': p('fifo') }) },
  // command, check-sudo, fail-on-error
  { name: 'with a terminal escape', input: 'command', inputs: () => ({ ...u, command: 'true \x1b]0;pwned\x07' }) },
  { name: 'with a carriage return', input: 'command', inputs: () => ({ ...u, command: 'true\r::error::pwned' }) },
  { name: 'not a boolean', input: 'check-sudo', inputs: () => ({ ...u, 'check-sudo': 'maybe' }) },
  { name: 'with a line break', input: 'check-sudo', inputs: () => ({ ...u, 'check-sudo': 'true\n::error::x' }) },
  { name: 'not a boolean', input: 'fail-on-error', inputs: () => ({ ...u, 'fail-on-error': 'sometimes' }) },
  { name: 'non-ASCII', input: 'fail-on-error', inputs: () => ({ ...u, 'fail-on-error': 'trüe' }) },
];

badInputTable('ssh-diagnose', cases, {
  secretInputs: { password: PASSWORD },
  neverShown: [PASSPHRASE, 'wrong-pp-value-9', 'second-line-', ...keyLines(plainKey), ...keyLines(encKey)],
});
