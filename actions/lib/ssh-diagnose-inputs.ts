/**
 * The ssh-diagnose inputs (action inputs or CLI flags, same kebab-case names), read and checked before any
 * connection: names, the port, one-line secrets, a key parsed with its passphrase (a key file is a regular
 * file of at most 64 KiB: never a device or a FIFO), the fingerprint, the algorithms, the serial log path
 * and the command.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { utils, type ParsedKey } from 'ssh2';
import { printable } from './escape.js';
import { InputError, checkInputFile, checkName, readBool, readInt, readList, readName, readRequired, readString, type InputGetter } from './inputs.js';
import type { SshDiagnoseOptions } from './ssh-diagnose.js';

/** RSA signature algorithms a client may use with an RSA key (pubkey-algorithms input). */
export const RSA_SIGNATURE_ALGORITHMS = ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] as const;

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

export function parsePrivateKey(text: string, passphrase: string | undefined, input: string): ParsedKey {
  const parsed = utils.parseKey(text, passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key instanceof Error || key === undefined) {
    const msg = key instanceof Error ? key.message : 'no key found';
    const encrypted = /encrypted|passphrase/i.test(msg);
    throw new InputError(
      input,
      `is not a private key that can be used (${msg})`,
      encrypted ? 'give its passphrase in the passphrase input (labforge: the LABFORGE_SSH_PASSPHRASE environment variable)' : 'give an OpenSSH or PEM private key (the file ssh-keygen writes without .pub)',
    );
  }
  if (!key.isPrivateKey()) throw new InputError(input, 'holds a public key, not a private key', 'give the private half (the file without .pub)');
  return key;
}

/** A private key file is small: this many bytes at most are read (a device or a huge file is refused). */
const MAX_KEY_FILE_BYTES = 64 * 1024;
/** A host name (RFC 1123 letters, digits, dots, hyphens), an IPv4 or an IPv6 address (brackets and zone allowed). */
const HOST_NAME = /^(\[?[0-9A-Fa-f:.]+(%[\w.-]+)?\]?|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?)$/;
/** A login name as OpenSSH and Packer take it: no white space, quotes, shell or non-ASCII characters. */
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@\\-]*\$?$/;

/** A secret (password, passphrase) is one line: the runner masks a value, and a line break would split it. */
function readSecretLine(get: InputGetter, name: string): string | undefined {
  const v = get(name);
  if (v === '') return undefined;
  if (/[\r\n]/.test(v)) throw new InputError(name, 'contains a line break (not shown: it is a secret)', `give the ${name} on one line`);
  return v;
}

/** Reads a private key file: a regular, non-empty file of at most {@link MAX_KEY_FILE_BYTES}, read once. */
function readKeyFile(keyPath: string): string {
  const input = 'private-key-path';
  const fix = 'give the path of an existing private key file (the one ssh-keygen writes without .pub)';
  const cannot = (e: unknown) => new InputError(input, `cannot read '${keyPath}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of an existing private key file');
  let st;
  try {
    st = statSync(keyPath);
  } catch (e) {
    throw cannot(e);
  }
  if (!st.isFile()) throw new InputError(input, `${printable(keyPath, 200)} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}, expected a private key file`, fix);
  if (st.size === 0) throw new InputError(input, `${printable(keyPath, 200)} is empty (0 bytes)`, fix);
  if (st.size > MAX_KEY_FILE_BYTES) throw new InputError(input, `${printable(keyPath, 200)} holds ${st.size} bytes, more than a private key (at most ${MAX_KEY_FILE_BYTES})`, fix);
  try {
    return readFileSync(keyPath, 'utf8');
  } catch (e) {
    throw cannot(e);
  }
}

/** Reads and validates the ssh-diagnose inputs (action inputs or CLI flags, same kebab-case names). */
export function readSshDiagnoseOptions(get: InputGetter): SshDiagnoseOptions {
  const host = readName(get, 'host', '127.0.0.1', 'a host name or an IP address');
  if (/\s/.test(host)) throw new InputError('host', `'${printable(host, 80)}' contains white space`, 'give a host name or an IP address such as 127.0.0.1');
  if (!HOST_NAME.test(host)) throw new InputError('host', `'${printable(host, 80)}' is not a host name or an IP address`, 'give a host name (letters, digits, dots, hyphens) or an IP address such as 127.0.0.1');
  const port = readInt(get, 'port', 22, { min: 1, max: 65535 });
  const username = checkName(readRequired(get, 'username', "set 'username' to the user the SSH client logs in as (Packer's ssh_username)"), 'username', 'the user name');
  if (!USER_NAME.test(username)) throw new InputError('username', `'${printable(username, 80)}' is not a user name`, "give the user the SSH client logs in as (Packer's ssh_username): letters, digits, _ . - @");
  const password = readSecretLine(get, 'password');
  const passphrase = readSecretLine(get, 'passphrase');
  const keyText = get('private-key');
  const keyPath = readString(get, 'private-key-path');
  if (keyText !== '' && keyPath !== '') throw new InputError('private-key', 'and private-key-path are both set', 'give only one of them');
  if (passphrase !== undefined && keyText === '' && keyPath === '') throw new InputError('passphrase', 'is set but no key is given', 'give the encrypted key in private-key or private-key-path, or leave passphrase empty');
  let privateKey: string | undefined;
  if (keyText !== '') {
    // Multi-line inputs may arrive with literal "\n" when passed through a single-line channel.
    privateKey = keyText.includes('\n') ? `${keyText.trim()}\n` : `${keyText.replace(/\\n/g, '\n').trim()}\n`;
    parsePrivateKey(privateKey, passphrase, 'private-key');
  } else if (keyPath !== '') {
    privateKey = readKeyFile(keyPath);
    parsePrivateKey(privateKey, passphrase, 'private-key-path');
  }
  const expectedHostKey = readString(get, 'expected-host-key') || undefined;
  if (expectedHostKey !== undefined && !FINGERPRINT.test(expectedHostKey)) {
    throw new InputError('expected-host-key', `'${expectedHostKey}' is not a SHA256 fingerprint`, "give it as 'ssh-keygen -lf KEY.pub' prints it: SHA256: followed by 43 base64 characters");
  }
  const pubkeyAlgorithms = readList(get, 'pubkey-algorithms');
  for (const a of pubkeyAlgorithms) {
    if (!(RSA_SIGNATURE_ALGORITHMS as readonly string[]).includes(a)) {
      throw new InputError('pubkey-algorithms', `'${a}' is not an RSA signature algorithm`, `use some of: ${RSA_SIGNATURE_ALGORITHMS.join(', ')}`);
    }
  }
  return {
    host,
    port,
    username,
    password,
    privateKey,
    privateKeyPath: keyPath || undefined,
    passphrase,
    expectedHostKey,
    timeoutSeconds: readInt(get, 'timeout-seconds', 10, { min: 1, max: 600 }),
    waitSeconds: readInt(get, 'wait-seconds', 0, { min: 0, max: 86_400 }),
    serialLog: readSerialLogPath(get),
    command: readCommand(get),
    checkSudo: readBool(get, 'check-sudo', true),
    pubkeyAlgorithms: pubkeyAlgorithms.length > 0 ? pubkeyAlgorithms : undefined,
  };
}

/**
 * The serial-log input: a log that does not exist yet is fine (the guest may not have written it; the report
 * says it is missing), but an existing path must be a regular file, never a directory or a device.
 */
function readSerialLogPath(get: InputGetter): string | undefined {
  const path = readString(get, 'serial-log');
  if (path === '' || !existsSync(path)) return path || undefined;
  checkInputFile(path, 'serial-log', { what: "the guest's serial console log (a regular file)" });
  return path;
}

/** The command input: any shell text, but no control character other than TAB and LF (a CR or ESC could rewrite the log). */
function readCommand(get: InputGetter): string {
  const command = readString(get, 'command', 'true');
  // eslint-disable-next-line no-control-regex
  const bad = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/.exec(command);
  if (bad) throw new InputError('command', `'${printable(command, 80)}' contains the control character ${printable(bad[0])}`, 'give a shell command without control characters (line breaks and tabs are fine)');
  return command;
}
