/**
 * `labforge ssh-diagnose`: the ssh-diagnose action on a terminal. Same flags as the action's inputs, except
 * for the secrets: a password on the command line is visible to every user in `ps`, so it is read from an
 * environment variable or a file instead (--password-env NAME, --password-file PATH, or LABFORGE_SSH_PASSWORD),
 * a key from --private-key-path, a passphrase from LABFORGE_SSH_PASSPHRASE.
 */
import { readFileSync } from 'node:fs';
import type { Command } from '../command.js';
import { InputError, type InputGetter } from '../../actions/lib/inputs.js';
import { diagnoseSsh, diagnosisOutputs, formatDiagnosis, readSshDiagnoseOptions } from '../../actions/lib/ssh-diagnose.js';

const PASSWORD_ENV = 'LABFORGE_SSH_PASSWORD';
const PASSPHRASE_ENV = 'LABFORGE_SSH_PASSPHRASE';

/** Finds the password from --password-env, --password-file or LABFORGE_SSH_PASSWORD ('' when none). */
function readPassword(get: InputGetter): string {
  const fromEnv = get('password-env');
  const fromFile = get('password-file');
  if (fromEnv !== '' && fromFile !== '') throw new InputError('password-env', 'and --password-file are both set', 'give only one of them');
  if (fromEnv !== '') {
    const value = process.env[fromEnv];
    if (value === undefined || value === '') throw new InputError('password-env', `the environment variable ${fromEnv} is not set or empty`, `export ${fromEnv} before running, or use --password-file`);
    return value;
  }
  if (fromFile !== '') {
    try {
      return readFileSync(fromFile, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new InputError('password-file', `cannot read '${fromFile}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of a file that holds the password');
    }
  }
  return process.env[PASSWORD_ENV] ?? '';
}

export const sshDiagnoseCommand: Command = {
  name: 'ssh-diagnose',
  summary: 'Name exactly why SSH login fails (TCP, banner, kex, host key, auth, command, sudo) and how to fix it.',
  flags: {
    host: { type: 'string', description: 'host to connect to', default: '127.0.0.1' },
    port: { type: 'string', description: 'TCP port (Packer qemu: the forwarded host port)', default: '22' },
    username: { type: 'string', description: "user to log in as (Packer's ssh_username)" },
    'password-env': { type: 'string', description: 'name of an environment variable holding the password' },
    'password-file': { type: 'string', description: 'file holding the password (one trailing newline is ignored)' },
    password: { type: 'string', description: `refused: argv is visible in ps; use --password-env, --password-file or ${PASSWORD_ENV}` },
    'private-key-path': { type: 'string', description: 'private key file (passphrase from LABFORGE_SSH_PASSPHRASE)' },
    'private-key': { type: 'string', description: 'refused: argv is visible in ps; use --private-key-path' },
    'expected-host-key': { type: 'string', description: 'SHA256:… fingerprint the host key must have' },
    'pubkey-algorithms': { type: 'string', description: 'RSA signature algorithms the client can use (ssh-rsa: a SHA-1-only client)' },
    'timeout-seconds': { type: 'string', description: 'timeout of each layer of an attempt', default: '10' },
    'wait-seconds': { type: 'string', description: 'keep retrying what a booting guest also fails with this long', default: '0' },
    'serial-log': { type: 'string', description: "guest serial console log to quote" },
    command: { type: 'string', description: 'command to run after login', default: 'true' },
    'check-sudo': { type: 'string', description: "check 'sudo -n true' (true/false)", default: 'true' },
    json: { type: 'boolean', description: 'print the report as JSON instead of the readable verdict' },
  },
  details: [
    `Password: --password-env NAME, --password-file PATH, or the ${PASSWORD_ENV} variable (never a flag value).`,
    'Exit codes: 0 SSH works, 1 a cause was found (printed), 2 bad input.',
    'Example: LABFORGE_SSH_PASSWORD=packer labforge ssh-diagnose --port 2222 --username packer --serial-log serial.log',
  ].join('\n'),
  run: async ({ get, print, log }) => {
    if (get('password') !== '') {
      throw new InputError('password', 'must not be given on the command line (every user can read argv with ps)', `use --password-env NAME, --password-file PATH or the ${PASSWORD_ENV} variable`);
    }
    if (get('private-key') !== '') {
      throw new InputError('private-key', 'must not be given on the command line (every user can read argv with ps)', 'use --private-key-path');
    }
    const password = readPassword(get);
    const getter: InputGetter = (name) => (name === 'password' ? password : name === 'passphrase' ? (process.env[PASSPHRASE_ENV] ?? '') : get(name));
    const options = readSshDiagnoseOptions(getter);
    const diagnosis = await diagnoseSsh({ ...options, onProgress: log });
    print(get('json') === 'true' ? JSON.stringify(JSON.parse(diagnosisOutputs(diagnosis).report), null, 2) : formatDiagnosis(diagnosis));
    return diagnosis.ok ? 0 : 1;
  },
};
