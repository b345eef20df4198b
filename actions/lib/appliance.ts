/**
 * The appliance: a directory `packer/<appliance>/` with a Packer template and an `appliance.yml` manifest,
 * declared once and read by every action and the CLI. Whatever differs between two appliances (the OS the
 * OVF declares, resource profiles, the build user and its seed, how attendees log in, the lab driver and
 * the commands the warm runs, timeouts, first-boot expectations) is data here, never a code path.
 *
 *   const app = await loadAppliance('packer/demo-lab');
 *   const res = chooseResources(app, { profile: 'tiny', cpus: 4 });
 *
 * The manifest is validated against appliance.schema.json (beside this file) with Ajv; the first problem
 * becomes one {@link InputError} line naming the file and the field.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import schema from './appliance.schema.json' with { type: 'json' };
import { InputError, readInt, readString, type InputGetter } from './inputs.js';
import type { GuestOs } from './ovf-descriptor.js';
import type { BuildType } from './release-names.js';

export const MANIFEST_FILE = 'appliance.yml';

/**
 * The variables packer-build passes to every appliance template: a template that does not declare one of
 * them is an input error (named before Packer starts).
 */
export const CONTRACT_VARIABLES = ['version', 'seed_dir', 'ssh_private_key_file', 'ssh_username', 'cpus', 'memory', 'disk_size', 'accelerator', 'output_directory'] as const;

/**
 * Variables passed only when the template declares them: the lab driver and its settings (lab.conf lines),
 * and the build type.
 */
export const OPTIONAL_VARIABLES = ['lab_driver', 'lab_settings', 'build_type'] as const;

export interface ResourceSizes {
  cpus: number;
  memoryMiB: number;
  diskGiB: number;
}

export interface ResourceProfile extends ResourceSizes {
  name: string;
  description: string;
  nestedVirtualization: boolean;
  basis?: string;
  labSettings: Record<string, string>;
}

export interface FirstBootExpectation {
  expectation: string;
  basis: string;
}

export interface ApplianceCommands {
  init: string;
  ready: string;
  status: string;
  seal: string;
}

export interface Appliance {
  /** Absolute path of the appliance directory. */
  dir: string;
  /** Absolute path of appliance.yml. */
  manifestPath: string;
  name: string;
  description: string;
  /** Absolute path of the Packer template (file or directory). */
  template: string;
  os: GuestOs;
  kvm: 'required' | 'preferred';
  runnerLabels: string[];
  resources: { default: string; minimum: ResourceSizes; profiles: Record<string, ResourceProfile> };
  build: {
    user: string;
    seed: { format: 'nocloud' | 'autoinstall'; userDataTemplate?: string; hostname: string };
    baseImage?: { command: string[]; timeoutMinutes: number; variables: Record<string, string> };
    variables: Record<string, string>;
    timeoutMinutes: number;
    sshWatchdogSeconds: number;
    expectedImageGiB: number;
  };
  login: { user: string; sudo: boolean; consolePassword: 'required' | 'optional' | 'none'; how: string };
  lab: { driver: string; settings: Record<string, string>; commands: ApplianceCommands };
  warm: { sshTimeoutMinutes: number; initTimeoutMinutes: number; readyTimeoutMinutes: number; shutdownTimeoutSeconds: number };
  firstBoot: Record<BuildType, FirstBootExpectation>;
}

/** The resources one build uses: a profile, with any input overrides applied. */
export interface ResourceChoice extends ResourceProfile {
  /** Which fields came from an input rather than the profile. */
  overridden: string[];
}

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
const validate = ajv.compile(schema);

/** `/build/seed/format` → `build.seed.format`. */
const fieldOf = (e: ErrorObject): string => {
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (e.keyword === 'required') return [path, (e.params as { missingProperty: string }).missingProperty].filter(Boolean).join('.');
  if (e.keyword === 'additionalProperties') return [path, (e.params as { additionalProperty: string }).additionalProperty].filter(Boolean).join('.');
  return path || '(top level)';
};

function describeSchemaError(e: ErrorObject): { field: string; problem: string; fix: string } {
  const field = fieldOf(e);
  switch (e.keyword) {
    case 'required':
      return { field, problem: 'is missing', fix: 'add it (see docs/APPLIANCES.md)' };
    case 'additionalProperties':
      return { field, problem: 'is not a known field', fix: 'remove it or fix its spelling (see docs/APPLIANCES.md)' };
    case 'enum':
      return { field, problem: `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`, fix: 'use one of those values' };
    case 'const':
      return { field, problem: `must be ${String((e.params as { allowedValue: unknown }).allowedValue)}`, fix: 'this labforge reads manifest schema 1' };
    case 'pattern':
      return { field, problem: `does not match ${(e.params as { pattern: string }).pattern}`, fix: 'see docs/APPLIANCES.md for the allowed form' };
    default:
      return { field, problem: e.message ?? 'is invalid', fix: 'see docs/APPLIANCES.md' };
  }
}

/** A path relative to the current directory when it is below it, else absolute. */
export const displayPath = (p: string): string => {
  const rel = relative(process.cwd(), p);
  return rel === '' || rel.startsWith('..') ? p : rel;
};

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

const settingsOf = (o: Record<string, string | number> | undefined): Record<string, string> => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, String(v)]));

/** Where appliance.yml lives for a given `appliance` input (the directory, or the manifest itself). */
export function manifestPathOf(dirOrFile: string): string {
  return dirOrFile.endsWith('.yml') || dirOrFile.endsWith('.yaml') ? dirOrFile : join(dirOrFile, MANIFEST_FILE);
}

/**
 * Reads and validates an appliance. `input` names the action input or CLI flag in errors. Throws an
 * {@link InputError} naming the manifest file and the field for anything wrong or missing, and for files
 * the manifest refers to that do not exist.
 */
export async function loadAppliance(dirOrFile: string, input = 'appliance'): Promise<Appliance> {
  const manifestPath = resolve(manifestPathOf(dirOrFile));
  const dir = dirname(manifestPath);
  const shown = displayPath(manifestPath);
  const text = await readFile(manifestPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
    const why = e.code === 'ENOENT' ? 'does not exist' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new InputError(input, `${shown} ${why}`, `give an appliance directory holding ${MANIFEST_FILE}, e.g. packer/demo-lab`);
  });
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}` : '';
    throw new InputError(input, `${shown} is not valid YAML${where} (${(e as Error).message.split('\n')[0]})`, 'fix the YAML syntax');
  }
  if (!validate(data)) {
    const { field, problem, fix } = describeSchemaError(validate.errors![0]!);
    throw new InputError(input, `${shown}: ${field} ${problem}`, fix);
  }
  // The schema has checked the shape; the cast only names it.
  const m = data as unknown as Manifest;
  const bad = (field: string, problem: string, fix: string) => new InputError(input, `${shown}: ${field} ${problem}`, fix);

  const profiles: Record<string, ResourceProfile> = {};
  for (const [name, p] of Object.entries(m.resources.profiles)) {
    profiles[name] = {
      name,
      description: p.description,
      cpus: p.cpus,
      memoryMiB: p['memory-mib'],
      diskGiB: p['disk-gib'],
      nestedVirtualization: p['nested-virtualization'],
      ...(p.basis ? { basis: p.basis } : {}),
      labSettings: settingsOf(p['lab-settings']),
    };
  }
  if (!profiles[m.resources.default]) throw bad('resources.default', `names '${m.resources.default}', which is not a profile`, `use one of: ${Object.keys(profiles).join(', ')}`);
  const minimum = { cpus: m.resources.minimum.cpus, memoryMiB: m.resources.minimum['memory-mib'], diskGiB: m.resources.minimum['disk-gib'] };
  for (const p of Object.values(profiles)) {
    const below = belowMinimum(p, minimum);
    if (below) throw bad(`resources.profiles.${p.name}.${below.field}`, `is ${below.value}, below the minimum ${below.minimum}`, 'raise it or lower resources.minimum');
  }

  const template = resolve(dir, m.template);
  if (!(await exists(template))) throw bad('template', `names ${m.template}, which does not exist in ${displayPath(dir)}`, 'give the Packer template file or directory relative to the appliance directory');
  const userData = m.build.seed['user-data'];
  if (userData && !(await exists(resolve(dir, userData)))) throw bad('build.seed.user-data', `names ${userData}, which does not exist`, 'give a YAML file relative to the appliance directory');
  const base = m.build['base-image'];
  if (base && !(await exists(resolve(dir, base.command[0]!)))) throw bad('build.base-image.command', `names ${base.command[0]}, which does not exist`, 'give a script relative to the appliance directory');
  if (m.login.user === m.build.user) throw bad('login.user', `is the build user '${m.build.user}'`, 'attendees log in as their own user: the build user loses its keys when the image is sealed');

  return {
    dir,
    manifestPath,
    name: m.name,
    description: m.description,
    template,
    os: { cimId: m.os['cim-os-type'], vmwareOsType: m.os['vmware-os-type'], description: m.os.description },
    kvm: m.kvm,
    runnerLabels: m['runner-labels'] ?? ['self-hosted', 'linux', 'x64', 'kvm'],
    resources: { default: m.resources.default, minimum, profiles },
    build: {
      user: m.build.user,
      seed: { format: m.build.seed.format, ...(userData ? { userDataTemplate: resolve(dir, userData) } : {}), hostname: m.build.seed.hostname ?? m.name },
      ...(base ? { baseImage: { command: base.command.map((c, i) => (i === 0 ? resolve(dir, c) : c)), timeoutMinutes: base['timeout-minutes'] ?? 30, variables: base.variables } } : {}),
      variables: settingsOf(m.build.variables as Record<string, string | number> | undefined),
      timeoutMinutes: m.build['timeout-minutes'],
      sshWatchdogSeconds: m.build['ssh-watchdog-seconds'] ?? 300,
      expectedImageGiB: m.build['expected-image-gib'],
    },
    login: { user: m.login.user, sudo: m.login.sudo ?? false, consolePassword: m.login['console-password'], how: m.login.how },
    lab: { driver: m.lab.driver, settings: settingsOf(m.lab.settings), commands: m.lab.commands },
    warm: {
      sshTimeoutMinutes: m.warm['ssh-timeout-minutes'],
      initTimeoutMinutes: m.warm['init-timeout-minutes'],
      readyTimeoutMinutes: m.warm['ready-timeout-minutes'],
      shutdownTimeoutSeconds: m.warm['shutdown-timeout-seconds'],
    },
    firstBoot: m['first-boot'],
  };
}

function belowMinimum(s: ResourceSizes, min: ResourceSizes): { field: string; value: number; minimum: number } | undefined {
  if (s.cpus < min.cpus) return { field: 'cpus', value: s.cpus, minimum: min.cpus };
  if (s.memoryMiB < min.memoryMiB) return { field: 'memory-mib', value: s.memoryMiB, minimum: min.memoryMiB };
  if (s.diskGiB < min.diskGiB) return { field: 'disk-gib', value: s.diskGiB, minimum: min.diskGiB };
  return undefined;
}

/** Input overrides of a profile (`profile`, `cpus`, `memory-mib`, `disk-gib`); unset fields stay undefined. */
export interface ResourceOverrides {
  profile?: string;
  cpus?: number;
  memoryMiB?: number;
  diskGiB?: number;
}

/** Reads the resource inputs shared by packer-build, vlab-warm, pack-ova and the pipeline. */
export function readResourceOverrides(get: InputGetter): ResourceOverrides {
  const num = (name: string, max: number) => {
    const v = readInt(get, name, -1, { min: 1, max });
    return v === -1 ? undefined : v;
  };
  const profile = readString(get, 'profile');
  const o: ResourceOverrides = {};
  if (profile) o.profile = profile;
  const cpus = num('cpus', 1024);
  if (cpus !== undefined) o.cpus = cpus;
  const memoryMiB = num('memory-mib', 4 * 1024 * 1024);
  if (memoryMiB !== undefined) o.memoryMiB = memoryMiB;
  const diskGiB = num('disk-gib', 65536);
  if (diskGiB !== undefined) o.diskGiB = diskGiB;
  return o;
}

/**
 * The resources of one build: the named (or default) profile with the overrides applied. An unknown
 * profile or a value below the manifest's minimum is an InputError naming the input.
 */
export function chooseResources(app: Appliance, o: ResourceOverrides = {}): ResourceChoice {
  const name = o.profile ?? app.resources.default;
  const profile = app.resources.profiles[name];
  if (!profile) throw new InputError('profile', `'${name}' is not a resource profile of ${app.name}`, `use one of: ${Object.keys(app.resources.profiles).join(', ')}`);
  const overridden: string[] = [];
  const choice: ResourceChoice = { ...profile, labSettings: { ...profile.labSettings }, overridden };
  if (o.cpus !== undefined) {
    choice.cpus = o.cpus;
    overridden.push('cpus');
  }
  if (o.memoryMiB !== undefined) {
    choice.memoryMiB = o.memoryMiB;
    overridden.push('memory-mib');
  }
  if (o.diskGiB !== undefined) {
    choice.diskGiB = o.diskGiB;
    overridden.push('disk-gib');
  }
  const below = belowMinimum(choice, app.resources.minimum);
  if (below) throw new InputError(below.field, `${below.value} is below the minimum ${below.minimum} of ${app.name} (${displayPath(app.manifestPath)} resources.minimum)`, `use at least ${below.minimum}`);
  return choice;
}

/**
 * Refuses an accelerator the appliance cannot run on (`kvm: required` under TCG): one check for the build,
 * the warm and the pipeline. `stage` says what was asked for (build, warm).
 */
export function checkAccelerator(app: Appliance, accelerator: string, stage: 'build' | 'warm'): void {
  if (app.kvm === 'required' && accelerator !== 'kvm') {
    throw new InputError('accelerator', `${accelerator} cannot ${stage} ${app.name}: its manifest says kvm: required (the lab runs VMs of its own)`, `${stage} it on a KVM runner with accelerator kvm`);
  }
}

/** The lab.conf lines of a build: the manifest's settings, then the profile's (which win). */
export function labSettingsLines(app: Appliance, choice: ResourceChoice): string {
  const all = { ...app.lab.settings, ...choice.labSettings };
  return Object.entries(all)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

/** The shape appliance.schema.json guarantees (kebab-case, as written in YAML). */
interface Manifest {
  name: string;
  description: string;
  template: string;
  os: { 'cim-os-type': number; 'vmware-os-type': string; description: string };
  kvm: 'required' | 'preferred';
  'runner-labels'?: string[];
  resources: {
    default: string;
    minimum: { cpus: number; 'memory-mib': number; 'disk-gib': number };
    profiles: Record<string, { description: string; cpus: number; 'memory-mib': number; 'disk-gib': number; 'nested-virtualization': boolean; basis?: string; 'lab-settings'?: Record<string, string | number> }>;
  };
  build: {
    user: string;
    seed: { format: 'nocloud' | 'autoinstall'; 'user-data'?: string; hostname?: string };
    'base-image'?: { command: string[]; 'timeout-minutes'?: number; variables: Record<string, string> };
    variables?: Record<string, string | number | boolean>;
    'timeout-minutes': number;
    'ssh-watchdog-seconds'?: number;
    'expected-image-gib': number;
  };
  login: { user: string; sudo?: boolean; 'console-password': 'required' | 'optional' | 'none'; how: string };
  lab: { driver: string; settings?: Record<string, string | number>; commands: ApplianceCommands };
  warm: { 'ssh-timeout-minutes': number; 'init-timeout-minutes': number; 'ready-timeout-minutes': number; 'shutdown-timeout-seconds': number };
  'first-boot': Record<BuildType, FirstBootExpectation>;
}
