/**
 * Checks of an SSH private key given as input, made before anything connects or boots: it parses (ssh2's
 * `utils.parseKey`, with the passphrase when one is given), it is a private key, and its file is not readable
 * by others (OpenSSH refuses such a key). Also: which hosts are loopback, and the fingerprint format.
 */
import { statSync } from 'node:fs';
import { utils } from 'ssh2';
import { printable } from './escape.js';
import { InputError } from './inputs.js';

/** The environment variable `labforge warm` and `labforge ssh-diagnose` read a key's passphrase from. */
export const PASSPHRASE_ENV = 'LABFORGE_SSH_PASSPHRASE';

/**
 * Parses the private key with ssh2 before anything boots: a damaged key, a public key, or an encrypted key
 * without (or with a wrong) passphrase is an input error naming `input`, not an SSH failure minutes later.
 */
export function checkPrivateKey(text: string, passphrase: string | undefined, input: string): void {
  const parsed = utils.parseKey(text, passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || key === undefined) {
    const msg = key instanceof Error ? key.message : 'no key found';
    if (/encrypted|passphrase|bad decrypt/i.test(msg)) {
      throw new InputError(
        input,
        passphrase ? `the passphrase does not decrypt the key (${printable(msg, 120)})` : 'is encrypted and no passphrase was given',
        `give its passphrase in the passphrase input (labforge: the ${PASSPHRASE_ENV} environment variable, never a flag)`,
      );
    }
    throw new InputError(input, `is not a private key that can be used (${printable(msg, 120)})`, 'give an OpenSSH or PEM private key (the file ssh-keygen writes without .pub)');
  }
  if (!key.isPrivateKey()) throw new InputError(input, 'holds a public key, not a private key', 'give the private half (the file without .pub)');
}

/**
 * A warning when the key file can be read by group or others: OpenSSH refuses such a key ("UNPROTECTED
 * PRIVATE KEY FILE"), so the same key would fail with ssh/Packer. '' when the mode is fine.
 */
export function keyFileModeWarning(path: string | undefined): string {
  if (!path) return '';
  try {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) === 0) return '';
    return `warning: ssh-key-path ${printable(path, 200)} has mode ${mode.toString(8).padStart(4, '0')} (readable by others): OpenSSH refuses such a key; run chmod 600 ${printable(path, 200)}`;
  } catch {
    return '';
  }
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/i;

/** True for a host name or address of this machine's loopback interface. */
export const isLoopbackHost = (host: string): boolean => LOOPBACK.test(host);

/** A host key fingerprint as ssh-keygen -lf prints it. */
export const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
