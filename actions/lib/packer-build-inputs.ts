/**
 * packer-build's inputs: the action's inputs and `labforge build`'s flags read and checked into
 * {@link PackerBuildOptions}. The build itself is in packer-build.ts.
 */
import { readResourceOverrides } from './appliance.js';
import { InputError, checkInputFile, checkVersion, readBool, readChoice, readInt, readList, readName, readRequired, readString, type InputGetter } from './inputs.js';
import type { ApplianceBuildRequest } from './packer-appliance.js';
import type { SshWatchdogOptions } from './packer-watchdog.js';
import { readAccelerator, type Accelerator } from './preflight.js';
import { BUILD_TYPES, type BuildType } from './release-names.js';
import { readRegistryCredential } from './registry-credential.js';
import { printable } from './escape.js';

export const ON_ERROR = ['cleanup', 'abort'] as const;
export const PACKAGES = ['ova', 'none'] as const;

export interface PackerBuildOptions {
  /** A template file or a directory of `*.pkr.hcl` files ('' for an appliance: its manifest names it). */
  template: string;
  /**
   * An appliance build: the manifest names the template, and packer-build makes the per-build key and seed
   * and passes the variable contract (see packer-appliance.ts).
   */
  appliance?: ApplianceBuildRequest;
  /** Inputs that were given explicitly (an appliance's manifest supplies the others' defaults). */
  explicit?: string[];
  buildType: BuildType;
  version: string;
  /** `-var` values (build_type, version and accelerator are added when the template declares them). */
  vars: Record<string, string>;
  varFiles: string[];
  /** `-only` builds. */
  only: string[];
  accelerator: Accelerator;
  timeoutMinutes: number;
  onError: (typeof ON_ERROR)[number];
  /** Exported as PACKER_GITHUB_API_TOKEN for `packer init` (never on a command line). */
  githubToken?: string;
  /**
   * The `registry-credential` input (USER:TOKEN, e.g. the Hedgehog appliance's GHCR credential): exported to
   * Packer as PKR_VAR_registry_auth, never on a command line; the template decides what to do with it.
   */
  registryCredential?: string;
  /** Restore and save PACKER_PLUGIN_PATH through `pluginCacheStore`. */
  pluginCache: boolean;
  /**
   * PACKER_CACHE_DIR (ISO downloads). Default: the runner's (PACKER_CACHE_DIR of its environment, which
   * runner-setup sets), else ~/.cache/labforge/packer; `temporary` for one that goes with the build.
   */
  cacheDir?: string;
  package: (typeof PACKAGES)[number];
  /** Where the build log and the OVA go (created if missing). */
  outputDir: string;
  /** Size estimate for the disk preflight, and the build VM's memory. */
  expectedImageGiB: number;
  vmMemoryMiB: number;
  watchdog: SshWatchdogOptions;
  /** Stop after `packer validate` (with exactly the variables a build would get). */
  validateOnly?: boolean;
  /** Also `keep-intermediates` for the OVA packer. */
  keepIntermediates?: boolean;
  /** Seconds Packer gets to clean up after SIGTERM before its process group is killed (default 8). */
  graceSeconds?: number;
  /** Packer executable (default `packer`). */
  packer?: string;
  /** Directory Packer runs in (relative paths in templates resolve from it; default: the current one). */
  workingDirectory?: string;
  /** KVM device for the preflight (default /dev/kvm). */
  kvmDevice?: string;
}

/** The largest private key file read (an OpenSSH RSA-16384 key is about 13 KiB). */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/** The user names SSH logs in as (vlab-warm's ssh-user takes the same). */
export const USER_NAME = /^[a-z_][a-z0-9_.-]*$/i;

/** `only` items: Packer source names such as qemu.hedgehog (globs allowed). */
const ONLY_ITEM = /^[A-Za-z0-9_.*-]+$/;

/** Checks ssh-private-key-file: a regular file of at most {@link MAX_KEY_FILE_BYTES} (never a device or a FIFO). */
export function checkPrivateKeyFile(path: string, input = 'ssh-private-key-file'): void {
  const st = checkInputFile(path, input, { nonEmpty: true, what: 'the private key file' });
  if (st.size > MAX_KEY_FILE_BYTES) throw new InputError(input, `${printable(path, 200)} is ${st.size} bytes, more than a private key (at most ${MAX_KEY_FILE_BYTES / 1024} KiB)`, 'give the path of the private key file');
}

/** Reads a secret input that must be one line: the error never repeats the value (the runner masks whole values only). */
function readSecretLine(get: InputGetter, name: string): string {
  const v = readString(get, name);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f\u2028\u2029]/.test(v)) throw new InputError(name, 'contains a line break or another control character (the value is not shown)', 'give the secret on one line');
  return v;
}

/** Parses `key=value` lines (the `vars` input). */
export function parseVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new InputError('vars', `'${line}' is not key=value`, 'write one key=value per line, e.g. disk_size=40960');
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) throw new InputError('vars', `'${key}' is not a variable name`, 'use letters, digits, _ and -');
    vars[key] = line.slice(eq + 1).trim();
  }
  return vars;
}

/** Reads and validates the packer-build inputs (action inputs and `labforge build` flags). */
export function readPackerBuildOptions(get: InputGetter): PackerBuildOptions {
  const buildType = readChoice(get, 'build-type', BUILD_TYPES, 'standard');
  const version = checkVersion(readRequired(get, 'version', 'give the appliance version, e.g. 1.4.0'), 'version');
  const timeoutMinutes = readInt(get, 'timeout-minutes', 120, { min: 1, max: 24 * 60 });
  const watchdogSeconds = readInt(get, 'ssh-watchdog-seconds', 300, { min: 0, max: 24 * 3600 });
  const githubToken = readSecretLine(get, 'github-token');
  const password = readSecretLine(get, 'ssh-password');
  const sshUsername = readName(get, 'ssh-username', 'packer', 'the user name');
  if (!USER_NAME.test(sshUsername)) throw new InputError('ssh-username', `'${printable(sshUsername, 80)}' is not a user name`, 'give the guest user that Packer logs in as (letters, digits, _ . -)');
  const only = readList(get, 'only');
  for (const item of only) if (!ONLY_ITEM.test(item)) throw new InputError('only', `'${printable(item, 80)}' is not a Packer source name`, 'give TYPE.NAME source names such as qemu.hedgehog, separated by commas');
  const privateKeyFile = readString(get, 'ssh-private-key-file');
  if (privateKeyFile) checkPrivateKeyFile(privateKeyFile);
  const applianceDir = readString(get, 'appliance');
  const template = readString(get, 'template');
  if (applianceDir && template) throw new InputError('template', `is set together with appliance (${applianceDir}), whose manifest names the template`, 'give either appliance or template');
  if (!applianceDir && !template) throw new InputError('appliance', 'is required but empty (and so is template)', 'give an appliance directory such as packer/hedgehog-lab, or a plain Packer template');
  const explicit = ['timeout-minutes', 'expected-image-gib', 'vm-memory-mib', 'ssh-watchdog-seconds', 'ssh-username'].filter((n) => get(n).trim() !== '');
  const consolePassword = readString(get, 'console-password');
  // The value is a secret: the error never repeats it.
  const registryCredential = readRegistryCredential(get);
  if (consolePassword && !applianceDir) throw new InputError('console-password', 'only applies to an appliance build', 'set appliance, or leave console-password empty');
  return {
    template,
    ...(applianceDir ? { appliance: { dir: applianceDir, overrides: readResourceOverrides(get), ...(consolePassword ? { consolePassword } : {}) } } : {}),
    explicit,
    buildType,
    version,
    vars: parseVars(get('vars')),
    varFiles: readList(get, 'var-files'),
    only,
    accelerator: readAccelerator(get),
    timeoutMinutes,
    onError: readChoice(get, 'on-error', ON_ERROR, 'cleanup'),
    githubToken: githubToken || undefined,
    ...(registryCredential ? { registryCredential } : {}),
    pluginCache: readBool(get, 'plugin-cache', true),
    cacheDir: readString(get, 'cache-dir') || undefined,
    package: readChoice(get, 'package', PACKAGES, 'ova'),
    outputDir: readString(get, 'output-dir', 'labforge-output'),
    expectedImageGiB: readInt(get, 'expected-image-gib', 40, { min: 1, max: 16384 }),
    vmMemoryMiB: readInt(get, 'vm-memory-mib', 4096, { min: 128, max: 4 * 1024 * 1024 }),
    watchdog: {
      afterSeconds: watchdogSeconds,
      username: sshUsername,
      privateKeyFile: privateKeyFile || undefined,
      password: password || undefined,
    },
    keepIntermediates: readBool(get, 'keep-intermediates', false),
    validateOnly: readBool(get, 'validate-only', false),
    kvmDevice: readString(get, 'kvm-device') || undefined,
  };
}
