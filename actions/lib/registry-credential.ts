/**
 * The registry credential (`USER:TOKEN`, e.g. the Hedgehog appliance's GHCR credential): a build secret that
 * packer-build hands to Packer in the environment (PKR_VAR_registry_auth) and vlab-warm hands to the guest
 * for the warm. In the guest it is docker's config format in `<dir>/config.json` (the driver's
 * DOCKER_CONFIG, on tmpfs: /run/hedgehog-lab/registry), written over SSH through stdin — never a command
 * line, never a log — and removed again after the lab is ready (the seal removes that directory too).
 */
import { InputError, type InputGetter } from './inputs.js';
import { shellQuote, type RemoteSession } from './ssh-remote.js';

/** The environment variable `labforge build` and `labforge warm` read it from (never a flag: argv is public). */
export const REGISTRY_CREDENTIAL_ENV = 'LABFORGE_REGISTRY_CREDENTIAL';

/** Where the guest's driver looks for docker's config (packer/guest/drivers/hedgehog-vlab.sh: DOCKER_CONFIG). */
export const GUEST_REGISTRY_DIR = '/run/hedgehog-lab/registry';

/** The registry the credential is for (Hedgehog publishes its artifacts on GHCR; the template uses the same). */
export const REGISTRY_HOST = 'ghcr.io';

/**
 * Reads the `registry-credential` input: '' when empty, else `USER:TOKEN`. The value is a secret: an error
 * never repeats it.
 */
export function readRegistryCredential(get: InputGetter): string {
  const credential = get('registry-credential').trim();
  if (credential && !/^[^:\s]+:\S+$/.test(credential)) throw new InputError('registry-credential', 'is not USER:TOKEN', 'give the registry user name and token separated by a colon');
  return credential;
}

/** docker's config.json for one registry: `{"auths":{"<host>":{"auth":"<base64 USER:TOKEN>"}}}`. */
export function dockerConfig(credential: string, host = REGISTRY_HOST): string {
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(credential, 'utf8').toString('base64') } } }) + '\n';
}

function checkDir(dir: string): void {
  if (!/^\/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$/.test(dir) || dir.split('/').includes('..')) throw new Error(`registry config directory '${dir}' is not an absolute path without '..'`);
}

/**
 * Writes the credential into the guest as `<dir>/config.json` (root's, directory 0700, file 0600), piped
 * over the session's stdin to `sudo -n sh`: the command line holds only the paths.
 */
export async function writeGuestRegistryCredential(session: RemoteSession, credential: string, options: { dir?: string; host?: string; timeoutMs?: number } = {}): Promise<string> {
  const dir = options.dir ?? GUEST_REGISTRY_DIR;
  checkDir(dir);
  const file = `${dir}/config.json`;
  const tmp = `${dir}/.config.json.labforge-tmp`;
  const parent = dir.replace(/\/[^/]*$/, '') || '/';
  const script = `set -e; mkdir -p ${shellQuote(parent)} ${shellQuote(dir)}; chmod 0700 ${shellQuote(dir)}; umask 077; cat >${shellQuote(tmp)}; mv -f ${shellQuote(tmp)} ${shellQuote(file)}`;
  const r = await session.exec(`sudo -n sh -c ${shellQuote(script)}`, { stdin: dockerConfig(credential, options.host), timeoutMs: options.timeoutMs ?? 60_000 });
  if (r.code !== 0) throw new Error(`cannot write the registry credential to ${file} in the guest (exit ${r.code ?? r.signal ?? '?'}): ${r.stderr.trim() || r.stdout.trim() || 'no output'}`);
  return file;
}

/** Removes `<dir>/config.json` (and the directory when it is then empty) from the guest. */
export async function removeGuestRegistryCredential(session: RemoteSession, options: { dir?: string; timeoutMs?: number } = {}): Promise<void> {
  const dir = options.dir ?? GUEST_REGISTRY_DIR;
  checkDir(dir);
  const script = `rm -f ${shellQuote(`${dir}/config.json`)} ${shellQuote(`${dir}/.config.json.labforge-tmp`)}; rmdir ${shellQuote(dir)} 2>/dev/null || true; test ! -e ${shellQuote(`${dir}/config.json`)}`;
  const r = await session.exec(`sudo -n sh -c ${shellQuote(script)}`, { timeoutMs: options.timeoutMs ?? 60_000 });
  if (r.code !== 0) throw new Error(`cannot remove the registry credential ${dir}/config.json from the guest (exit ${r.code ?? r.signal ?? '?'}): ${r.stderr.trim() || 'no output'}`);
}
