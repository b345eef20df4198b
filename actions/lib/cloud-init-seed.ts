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
 * The pre-warmed Packer template (packer/hedgehog-lab-prewarmed/build.sh) makes its own seed in bash:
 * Packer attaches it itself (cd_files / cd_label), before labforge runs.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utils } from 'ssh2';
import { stringify } from 'yaml';

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
  /** Comment of a generated key. */
  keyComment?: string;
  /** Where to make the private seed directory (default: the system temp dir). */
  parentDir?: string;
  /** Unique per boot so that cloud-init treats it as a new instance (default: labforge-warm-<uuid>). */
  instanceId?: string;
  signal?: AbortSignal;
}

export interface CloudInitSeed extends SeedKeyPair {
  /** The private (0700) directory holding user-data, meta-data and the ISO. */
  dir: string;
  /** The seed ISO (volume id `cidata`). */
  iso: string;
  instanceId: string;
  user: string;
  /** The program that made the ISO (genisoimage, mkisofs or xorrisofs). */
  isoTool: string;
}

/** A new ed25519 key pair in OpenSSH format, made in memory (ssh2). */
export function generateSeedKeyPair(comment = 'labforge-warm'): SeedKeyPair {
  const pair = utils.generateKeyPairSync('ed25519', { comment });
  return { privateKey: pair.private, publicKey: pair.public.trim() };
}

/** The OpenSSH public key line of a private key (unencrypted, any type ssh2 reads). */
export function publicKeyOf(privateKey: string, comment = 'labforge-warm'): string {
  const parsed = utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new Error(`cannot read the SSH private key${key instanceof Error ? ` (${key.message})` : ''}`);
  return `${key.type} ${key.getPublicSSH().toString('base64')} ${comment}`;
}

/** The `#cloud-config` user-data that authorizes `publicKey` for `user` with passwordless sudo. */
export function seedUserData(user: string, publicKey: string): string {
  const config = {
    // No `default` entry: the image's distribution user (ubuntu) is not created.
    users: [
      {
        name: user,
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        shell: '/bin/bash',
        // false = leave the password alone: cloud-init's default (true) would lock an existing user's
        // console password; a user created here gets useradd's locked password anyway.
        lock_passwd: false,
        ssh_authorized_keys: [publicKey],
      },
    ],
  };
  // lineWidth 0: the key stays on one line (a folded plain scalar is valid YAML, but not greppable).
  return `#cloud-config\n${stringify(config, { lineWidth: 0 })}`;
}

/** The NoCloud meta-data (the hostname is left as the image has it). */
export function seedMetaData(instanceId: string): string {
  return stringify({ 'instance-id': instanceId });
}

const ISO_TOOLS = ['genisoimage', 'mkisofs', 'xorrisofs'] as const;

function run(cmd: string, args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(signal ? { signal } : {}) });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(Object.assign(new Error(`cannot run ${cmd}: ${e.message}`), { code: (e as NodeJS.ErrnoException).code })));
    child.on('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`${cmd} failed (exit ${code}): ${err.trim()}`))));
  });
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
    ? { privateKey: options.privateKey, publicKey: publicKeyOf(options.privateKey, options.keyComment) }
    : generateSeedKeyPair(options.keyComment);
  const instanceId = options.instanceId ?? `labforge-warm-${randomUUID()}`;
  // mkdtemp creates the directory with mode 0700.
  const dir = await mkdtemp(join(options.parentDir ?? tmpdir(), 'labforge-seed-'));
  try {
    await writeFile(join(dir, 'user-data'), seedUserData(options.user, keys.publicKey), { mode: 0o600 });
    await writeFile(join(dir, 'meta-data'), seedMetaData(instanceId), { mode: 0o600 });
    const iso = join(dir, 'seed.iso');
    const isoTool = await makeIso(dir, iso, options.signal);
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

/** The QEMU arguments that attach the seed as a read-only CD-ROM (commas in the path escaped). */
export function seedQemuArgs(seed: Pick<CloudInitSeed, 'iso'>): string[] {
  return ['-drive', `file=${seed.iso.replace(/,/g, ',,')},media=cdrom,readonly=on,format=raw`];
}
