import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { connectErrorCause, identifyProtocol } from '../../actions/lib/ssh-banner.js';
import { SSH_CAUSES, SSH_CAUSE_INFO } from '../../actions/lib/ssh-causes.js';
import { diagnoseSecrets, readSshDiagnoseOptions } from '../../actions/lib/ssh-diagnose.js';
import { keyBlobAlgorithm, sshFingerprint } from '../../actions/lib/ssh-session-probe.js';

let dir: string;
let keyPath: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-ssh-inputs-'));
  keyPath = join(dir, 'id');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyPath]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readSshDiagnoseOptions', () => {
  it('applies the documented defaults', () => {
    expect(readSshDiagnoseOptions(inputsFrom({ username: 'packer' }))).toMatchObject({
      host: '127.0.0.1',
      port: 22,
      username: 'packer',
      timeoutSeconds: 10,
      waitSeconds: 0,
      command: 'true',
      checkSudo: true,
    });
  });

  it('reads a key from a path and validates it', () => {
    const o = readSshDiagnoseOptions(inputsFrom({ username: 'u', 'private-key-path': keyPath }));
    expect(o.privateKey).toContain('OPENSSH PRIVATE KEY');
    expect(() => readSshDiagnoseOptions(inputsFrom({ username: 'u', 'private-key-path': `${keyPath}.pub` }))).toThrow(/private-key-path: (holds a public key|is not a private key)/);
    expect(() => readSshDiagnoseOptions(inputsFrom({ username: 'u', 'private-key': 'not a key' }))).toThrow(/private-key: is not a private key/);
    expect(() => readSshDiagnoseOptions(inputsFrom({ username: 'u', 'private-key': readFileSync(keyPath, 'utf8'), 'private-key-path': keyPath }))).toThrow(
      /private-key: and private-key-path are both set/,
    );
  });

  it('names every bad input', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{}, /username: is required/],
      [{ username: 'u', port: '0' }, /port: 0 is out of range/],
      [{ username: 'u', host: 'a b' }, /host: 'a b' contains white space/],
      [{ username: 'u', 'timeout-seconds': 'soon' }, /timeout-seconds: 'soon' is not a whole number/],
      [{ username: 'u', 'check-sudo': 'maybe' }, /check-sudo: 'maybe' is not a boolean/],
      [{ username: 'u', 'expected-host-key': 'SHA256:short' }, /expected-host-key: 'SHA256:short' is not a SHA256 fingerprint/],
      [{ username: 'u', 'pubkey-algorithms': 'ssh-rsa,ssh-dss' }, /pubkey-algorithms: 'ssh-dss' is not an RSA signature algorithm/],
    ];
    for (const [inputs, message] of bad) expect(() => readSshDiagnoseOptions(inputsFrom(inputs))).toThrow(message);
  });

  it('lists the secrets to mask: password, passphrase and each key line', () => {
    const key = readFileSync(keyPath, 'utf8');
    const secrets = diagnoseSecrets({ password: 'pw-123', passphrase: 'pp-456', privateKey: key });
    expect(secrets).toEqual(expect.arrayContaining(['pw-123', 'pp-456', key.split('\n')[1]]));
    expect(secrets).not.toContain('-----BEGIN OPENSSH PRIVATE KEY-----');
  });
});

describe('classifiers', () => {
  it('maps connect errors to causes', () => {
    expect(connectErrorCause('ECONNREFUSED')).toBe('connection-refused');
    expect(connectErrorCause('EHOSTUNREACH')).toBe('host-unreachable');
    expect(connectErrorCause('ENETUNREACH')).toBe('host-unreachable');
    expect(connectErrorCause('ENOTFOUND')).toBe('host-not-found');
    expect(connectErrorCause('EPIPE')).toBeUndefined();
  });

  it('names what a non-SSH port speaks from its first bytes', () => {
    expect(identifyProtocol(Buffer.from('HTTP/1.1 400 Bad Request\r\n'))).toBe('http');
    expect(identifyProtocol(Buffer.from('RFB 003.008\n'))).toBe('vnc');
    expect(identifyProtocol(Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02]))).toBe('tls');
    expect(identifyProtocol(Buffer.from('220 mail ESMTP\r\n'))).toBe('smtp-or-ftp');
    expect(identifyProtocol(Buffer.from('hello'))).toBe('unknown');
  });

  it('computes fingerprints as ssh-keygen does', () => {
    const pub = readFileSync(`${keyPath}.pub`, 'utf8').split(' ');
    const blob = Buffer.from(pub[1] ?? '', 'base64');
    const expected = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${keyPath}.pub`], { encoding: 'utf8' }).split(' ')[1];
    expect(sshFingerprint(blob)).toBe(expected);
    expect(keyBlobAlgorithm(blob)).toBe('ssh-ed25519');
  });

  it('has a title and, except for ok, a fix for every cause', () => {
    for (const cause of SSH_CAUSES) {
      expect(SSH_CAUSE_INFO[cause].title.length).toBeGreaterThan(10);
      if (cause !== 'ok') expect(SSH_CAUSE_INFO[cause].fix.length).toBeGreaterThan(0);
    }
  });
});
