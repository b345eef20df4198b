/**
 * A NoCloud seed (a small ISO labelled `cidata` with `user-data` and `meta-data`) that lets a build log in
 * to a sealed cloud-init image: the user-data authorizes one SSH public key for one user and gives it
 * passwordless sudo. cloud-init finds the seed by its volume label on the next boot.
 *
 * The real appliance needs this: its seal (packer/guest/seal.sh) removes the build user's authorized key
 * and cloud-init's state, so nothing else can log in afterwards. vlab-warm builds a seed per run with a
 * fresh ed25519 key pair; the private key stays in memory (it is never written to disk), and the seed
 * directory (mode 0700) is removed by {@link removeSeed}.
 *
 * packer-build makes the build seed of an appliance with the same renderer ({@link renderUserData}): the
 * build user with the per-build key, and the appliance's login user with the console password's hash. Packer
 * attaches that directory itself (cd_files / cd_label), so no ISO is made for it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utils } from 'ssh2';
import { stringify } from 'yaml';
import { toolOutput } from './tool-output.js';

/** The ISO volume label cloud-init's NoCloud datasource looks for. */
export const SEED_VOLUME_ID = 'cidata';

export interface SeedKeyPair {
  /** OpenSSH private key text. Secret: never log it. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
}

export interface CreateSeedOptions {
  /** The user to authorize (created by cloud-init if the image does not have it). */
  user: string;
  /** The private key to authorize (its public half goes into user-data). Default: a new ed25519 key pair. */
  privateKey?: string;
  /** Passphrase of an encrypted `privateKey` (to derive its public half). */
  passphrase?: string;
  /** Comment of a generated key. */
  keyComment?: string;
  /** Where to make the private seed directory (default: the system temp dir). */
  parentDir?: string;
  /** Unique per boot so that cloud-init treats it as a new instance (default: labforge-warm-<uuid>). */
  instanceId?: string;
  /** Other users the seed sets up (an appliance's login user with its password hash). */
  extraUsers?: SeedUser[];
  /** Password of `user` (default `unchanged`; a build seed locks it). */
  userPassword?: SeedUser['password'];
  /** The appliance's seed format and user-data base (default: a plain NoCloud `#cloud-config`). */
  format?: UserDataOptions['format'];
  base?: Record<string, unknown>;
  /** `local-hostname` of the meta-data. */
  hostname?: string;
  /** Make the ISO (default true). Packer attaches a directory's files itself (cd_files). */
  iso?: boolean;
  signal?: AbortSignal;
}

export interface CloudInitSeed extends SeedKeyPair {
  /** The private (0700) directory holding user-data, meta-data and the ISO. */
  dir: string;
  /** The seed ISO (volume id `cidata`); '' when no ISO was asked for. */
  iso: string;
  instanceId: string;
  user: string;
  /** The program that made the ISO (genisoimage, mkisofs or xorrisofs); '' without an ISO. */
  isoTool: string;
}

/**
 * A new ed25519 key pair in OpenSSH format, made in memory (ssh2). ssh2's generator writes an unreadable
 * private key about once in 270 keys ("Malformed OpenSSH private key"; OpenSSH cannot load it either:
 * measured, 11 of 3,000), which would fail a build at its first login: every key is read back before use,
 * and a bad one is replaced.
 */
export function generateSeedKeyPair(comment = 'labforge-warm'): SeedKeyPair {
  for (let attempt = 1; ; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    if (!(utils.parseKey(pair.private) instanceof Error)) return { privateKey: pair.private, publicKey: pair.public.trim() };
    if (attempt === 20) throw new Error('ssh2 made 20 unreadable ed25519 keys in a row; cannot make a login key');
  }
}

/** The OpenSSH public key line of a private key (any type ssh2 reads; `passphrase` for an encrypted one). */
export function publicKeyOf(privateKey: string, comment = 'labforge-warm', passphrase?: string): string {
  const parsed = utils.parseKey(privateKey, passphrase);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new Error(`cannot read the SSH private key${key instanceof Error ? ` (${key.message})` : ''}`);
  return `${key.type} ${key.getPublicSSH().toString('base64')} ${comment}`;
}

/** One user the seed creates or updates. */
export interface SeedUser {
  name: string;
  /** OpenSSH public key lines to authorize. */
  publicKeys?: string[];
  /** Passwordless sudo. */
  sudo?: boolean;
  /**
   * `locked`: no password (a new user gets a locked one, an existing one is locked); `unchanged`: leave the
   * password as it is (default); `{ hash }`: set this crypt(3) hash (never a clear-text password).
   */
  password?: 'locked' | 'unchanged' | { hash: string };
  gecos?: string;
  groups?: string[];
}

export interface UserDataOptions {
  /** `nocloud`: a `#cloud-config` document; `autoinstall`: Ubuntu's installer config (users under autoinstall.user-data). */
  format?: 'nocloud' | 'autoinstall';
  /** The appliance's user-data base (parsed YAML); the users are added to it, nothing else is changed. */
  base?: Record<string, unknown>;
  users: SeedUser[];
}

function cloudInitUser(u: SeedUser): Record<string, unknown> {
  const entry: Record<string, unknown> = { name: u.name };
  if (u.gecos) entry.gecos = u.gecos;
  if (u.groups?.length) entry.groups = u.groups.join(', ');
  entry.shell = '/bin/bash';
  if (u.sudo) entry.sudo = 'ALL=(ALL) NOPASSWD:ALL';
  const password = u.password ?? 'unchanged';
  if (password === 'locked') entry.lock_passwd = true;
  else if (password === 'unchanged') {
    // false = leave the password alone: cloud-init's default (true) would lock an existing user's console
    // password; a user created here gets useradd's locked password anyway.
    entry.lock_passwd = false;
  } else {
    if (!/^\$(6|5|y|2[aby])\$[^\s:]+$/.test(password.hash)) throw new Error(`seed: the password of ${u.name} is not a crypt(3) hash`);
    entry.lock_passwd = false;
    entry.passwd = password.hash;
  }
  if (u.publicKeys?.length) entry.ssh_authorized_keys = u.publicKeys;
  return entry;
}

/**
 * The one user-data renderer (build seeds, warm seeds, test seeds): the base document with `users` set to
 * exactly the given users. No `default` entry, so the image's distribution user (ubuntu, debian) is not
 * created. For `autoinstall` the users go to `autoinstall.user-data.users` (the installed system's
 * cloud-init), which the base must not already set.
 */
export function renderUserData(o: UserDataOptions): string {
  const users = o.users.map(cloudInitUser);
  const doc: Record<string, unknown> = structuredClone(o.base ?? {});
  if ((o.format ?? 'nocloud') === 'autoinstall') {
    const ai = doc.autoinstall as Record<string, unknown> | undefined;
    if (!ai || typeof ai !== 'object') throw new Error('seed: an autoinstall user-data base needs an `autoinstall:` mapping');
    const ud = (ai['user-data'] ?? {}) as Record<string, unknown>;
    if ('users' in ud || 'identity' in ai) throw new Error('seed: the user-data base must not declare users (labforge adds the build and login users)');
    ai['user-data'] = { ...ud, users };
  } else {
    if ('users' in doc) throw new Error('seed: the user-data base must not declare users (labforge adds the build and login users)');
    doc.users = users;
  }
  // lineWidth 0: a key stays on one line (a folded plain scalar is valid YAML, but not greppable).
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}

/** The `#cloud-config` user-data that authorizes `publicKey` for `user` with passwordless sudo. */
export function seedUserData(user: string, publicKey: string): string {
  return renderUserData({ users: [{ name: user, sudo: true, publicKeys: [publicKey] }] });
}

/** The NoCloud meta-data (the hostname is left as the image has it unless given). */
export function seedMetaData(instanceId: string, hostname?: string): string {
  return stringify({ 'instance-id': instanceId, ...(hostname ? { 'local-hostname': hostname } : {}) });
}

/**
 * The SHA-512 crypt(3) hash of a console password (`openssl passwd -6`, the password on stdin: never in
 * argv). Only the hash is ever written to a seed or an image.
 */
export async function hashPassword(password: string, signal?: AbortSignal): Promise<string> {
  if (password === '' || /[\r\n]/.test(password)) throw new Error('the console password must be one non-empty line');
  const r = await toolOutput('openssl', ['passwd', '-6', '-stdin'], { input: `${password}\n`, ...(signal ? { signal } : {}) }).catch((e: Error) =>
    Promise.reject(new Error(`cannot run openssl to hash the console password (${e.message}); install openssl`)),
  );
  const hash = r.stdout.trim();
  if (r.exitCode === 0 && hash.startsWith('$6$')) return hash;
  throw new Error(`openssl passwd failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
}

const ISO_TOOLS = ['genisoimage', 'mkisofs', 'xorrisofs'] as const;

async function run(cmd: string, args: string[], signal?: AbortSignal): Promise<void> {
  const r = await toolOutput(cmd, args, signal ? { signal } : {}).catch((e: Error) =>
    Promise.reject(Object.assign(new Error(`cannot run ${cmd}: ${e.message}`), { code: (e as NodeJS.ErrnoException).code })),
  );
  if (r.exitCode !== 0) throw new Error(`${cmd} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
}

/** Writes the ISO with the first ISO 9660 tool found (same flags for all three). */
async function makeIso(dir: string, iso: string, signal?: AbortSignal): Promise<string> {
  for (const tool of ISO_TOOLS) {
    try {
      await run(tool, ['-quiet', '-output', iso, '-volid', SEED_VOLUME_ID, '-joliet', '-rock', join(dir, 'user-data'), join(dir, 'meta-data')], signal);
      return tool;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  throw new Error(`no ISO 9660 tool found (tried ${ISO_TOOLS.join(', ')}) to build the cloud-init seed; install genisoimage (apt-get install genisoimage)`);
}

/**
 * Makes a NoCloud seed ISO in a new private directory. On failure the directory is removed before the
 * error is thrown.
 */
export async function createSeed(options: CreateSeedOptions): Promise<CloudInitSeed> {
  const keys: SeedKeyPair = options.privateKey
    ? { privateKey: options.privateKey, publicKey: publicKeyOf(options.privateKey, options.keyComment, options.passphrase) }
    : generateSeedKeyPair(options.keyComment);
  const instanceId = options.instanceId ?? `labforge-warm-${randomUUID()}`;
  // mkdtemp creates the directory with mode 0700.
  const dir = await mkdtemp(join(options.parentDir ?? tmpdir(), 'labforge-seed-'));
  try {
    const users: SeedUser[] = [{ name: options.user, sudo: true, publicKeys: [keys.publicKey], password: options.userPassword ?? 'unchanged' }, ...(options.extraUsers ?? [])];
    const userData = renderUserData({ format: options.format ?? 'nocloud', ...(options.base ? { base: options.base } : {}), users });
    await writeFile(join(dir, 'user-data'), userData, { mode: 0o600 });
    await writeFile(join(dir, 'meta-data'), seedMetaData(instanceId, options.hostname), { mode: 0o600 });
    const wantIso = options.iso ?? true;
    const iso = wantIso ? join(dir, 'seed.iso') : '';
    const isoTool = wantIso ? await makeIso(dir, iso, options.signal) : '';
    return { ...keys, dir, iso, instanceId, user: options.user, isoTool };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Removes a seed's directory (user-data, meta-data, ISO). Idempotent. */
export async function removeSeed(seed: Pick<CloudInitSeed, 'dir'>): Promise<void> {
  await rm(seed.dir, { recursive: true, force: true });
}

/**
 * The QEMU arguments that attach the seed as a read-only virtio disk (commas in the path escaped). cloud-init's
 * NoCloud reads any block device labelled cidata; virtio is the one bus every cloud kernel drives (Debian's
 * cloud kernel has no AHCI, so a CD-ROM on q35's SATA controller stays invisible to it).
 */
export function seedQemuArgs(seed: Pick<CloudInitSeed, 'iso'>): string[] {
  return ['-drive', `file=${seed.iso.replace(/,/g, ',,')},if=virtio,readonly=on,format=raw`];
}
