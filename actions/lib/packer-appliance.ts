/**
 * The appliance side of a Packer build: the variable contract every appliance template honours, and the
 * steps that prepare what those variables point to — the base image (when the manifest declares one), the
 * per-build ed25519 key and the seed that authorizes it, and a Packer-1.6-compatible copy of the template.
 *
 * Each step has its cleanup (step-sequence.ts): the key and the seed live in a private directory under the
 * build's work directory and are removed whatever happens.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CONTRACT_VARIABLES, OPTIONAL_VARIABLES, checkAccelerator, chooseResources, displayPath, labSettingsLines, loadAppliance, type Appliance, type ResourceChoice, type ResourceOverrides } from './appliance.js';
import { createSeed, hashPassword, removeSeed, type CloudInitSeed, type SeedUser } from './cloud-init-seed.js';
import { InputError } from './inputs.js';
import { requiredPluginBlocks, templateFiles } from './packer-plugin-cache.js';

/** What the packer-build inputs say about an appliance build. */
export interface ApplianceBuildRequest {
  /** The appliance directory (or its appliance.yml). */
  dir: string;
  overrides: ResourceOverrides;
  /** The attendee's console password (secret; only its hash reaches the image). */
  consolePassword?: string;
}

/** An appliance loaded and checked for one build. */
export interface ApplianceBuild {
  appliance: Appliance;
  resources: ResourceChoice;
  /** crypt(3) hash of the console password, when one was given. */
  passwordHash?: string;
}

/** Variables a template declares (`variable "name"` in HCL, `variables` in JSON). */
export async function declaredVariables(template: string): Promise<Set<string>> {
  const names = new Set<string>();
  for (const file of await templateFiles(template)) {
    const text = await readFile(file, 'utf8');
    if (file.endsWith('.json')) {
      const vars = (JSON.parse(text) as { variables?: Record<string, unknown> }).variables ?? {};
      for (const k of Object.keys(vars)) names.add(k);
    } else {
      for (const m of text.matchAll(/^\s*variable\s+"([^"]+)"/gm)) names.add(m[1]!);
    }
  }
  return names;
}

/**
 * Checks that an appliance template declares every contract variable; names the missing ones. Returns the
 * declared variables.
 */
export async function checkTemplateContract(app: Appliance): Promise<Set<string>> {
  const declared = await declaredVariables(app.template);
  const missing = CONTRACT_VARIABLES.filter((v) => !declared.has(v));
  if (missing.length > 0) {
    throw new InputError(
      'appliance',
      `the template ${displayPath(app.template)} does not declare ${missing.map((v) => `"${v}"`).join(', ')} (the variable contract every appliance template honours)`,
      `add a variable block for each; see docs/APPLIANCES.md`,
    );
  }
  return declared;
}

/** Loads the appliance, chooses its resources and checks everything a build needs before anything slow. */
export async function prepareApplianceBuild(req: ApplianceBuildRequest, accelerator: string): Promise<ApplianceBuild> {
  const appliance = await loadAppliance(req.dir);
  const resources = chooseResources(appliance, req.overrides);
  checkAccelerator(appliance, accelerator, 'build');
  if (appliance.login.consolePassword === 'required' && !req.consolePassword) {
    throw new InputError('console-password', `is empty, but ${appliance.name} requires a console password for its login user ${appliance.login.user}`, 'set the console_password secret of the build');
  }
  if (appliance.login.consolePassword === 'none' && req.consolePassword) {
    throw new InputError('console-password', `is set, but ${appliance.name} takes no console password (login.console-password: none)`, 'leave it empty');
  }
  await checkTemplateContract(appliance);
  const passwordHash = req.consolePassword ? await hashPassword(req.consolePassword).catch((e: Error) => Promise.reject(new InputError('console-password', e.message, 'give one line of text'))) : undefined;
  return { appliance, resources, ...(passwordHash ? { passwordHash } : {}) };
}

/** The per-build key and seed (a private directory: user-data, meta-data, and the key beside them). */
export interface BuildSeed {
  seed: CloudInitSeed;
  /** The private key file Packer logs in with (0600, in the seed's private directory, not on the CD). */
  privateKeyFile: string;
}

/**
 * Makes the per-build ed25519 key and the appliance's seed: the build user with the key and passwordless
 * sudo (password locked), and the login user with the console password's hash (or locked).
 */
export async function makeBuildSeed(b: ApplianceBuild, o: { parentDir: string; version: string }): Promise<BuildSeed> {
  const app = b.appliance;
  const base = app.build.seed.userDataTemplate ? (parseYaml(await readFile(app.build.seed.userDataTemplate, 'utf8')) as Record<string, unknown>) : undefined;
  const login: SeedUser = { name: app.login.user, sudo: app.login.sudo, password: b.passwordHash ? { hash: b.passwordHash } : 'locked', gecos: 'lab appliance user' };
  const seed = await createSeed({
    user: app.build.user,
    userPassword: 'locked',
    extraUsers: [login],
    format: app.build.seed.format,
    ...(base ? { base } : {}),
    hostname: app.build.seed.hostname,
    keyComment: `labforge-build-${app.name}-${o.version}`,
    instanceId: `${app.name}-build-${o.version}-${Date.now()}`,
    parentDir: o.parentDir,
    iso: false,
  });
  const privateKeyFile = join(seed.dir, 'build-key');
  await writeFile(privateKeyFile, seed.privateKey, { mode: 0o600 });
  return { seed, privateKeyFile };
}

export const removeBuildSeed = (s: BuildSeed | undefined): Promise<void> => (s ? removeSeed(s.seed) : Promise.resolve());

/**
 * Runs the manifest's base-image command (it builds or reuses a cached image) and maps the fields of the
 * JSON object on its last stdout line to template variables.
 */
export function runBaseImage(app: Appliance, o: { signal?: AbortSignal; log?: (line: string) => void } = {}): Promise<Record<string, string>> {
  const base = app.build.baseImage;
  if (!base) return Promise.resolve({});
  const [cmd, ...args] = base.command;
  return new Promise((resolvePromise, reject) => {
    // execFile, not @actions/exec: building the base image takes minutes and needs the manifest's timeout and the abort signal.
    const child = execFile(cmd!, args, { cwd: app.dir, timeout: base.timeoutMinutes * 60_000, maxBuffer: 16 * 1024 * 1024, ...(o.signal ? { signal: o.signal } : {}) }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`the base image command ${displayPath(cmd!)} failed (${err.message.split('\n')[0]}):\n${stderr.split('\n').slice(-15).join('\n')}`));
        return;
      }
      const last = stdout.trim().split('\n').pop() ?? '';
      let out: Record<string, unknown>;
      try {
        out = JSON.parse(last) as Record<string, unknown>;
      } catch {
        reject(new Error(`the base image command ${displayPath(cmd!)} did not end with a JSON object on stdout (last line: '${last.slice(0, 200)}')`));
        return;
      }
      const vars: Record<string, string> = {};
      for (const [variable, field] of Object.entries(base.variables)) {
        const v = out[field];
        if (typeof v !== 'string' && typeof v !== 'number') {
          reject(new Error(`the base image command's JSON has no field '${field}' (for the template variable ${variable})`));
          return;
        }
        vars[variable] = String(v);
      }
      resolvePromise(vars);
    });
    let partial = '';
    child.stderr?.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) o.log?.(`base image: ${l}`);
    });
  });
}

/**
 * The template variables of an appliance build: the contract, the optional lab variables the template
 * declares, the manifest's literal variables and the base image's; `userVars` (the `vars` input) last.
 */
export function applianceVariables(
  b: ApplianceBuild,
  o: { version: string; buildType: string; accelerator: string; seedDir: string; privateKeyFile: string; outputDirectory: string; declared: Set<string>; baseImage: Record<string, string>; userVars: Record<string, string> },
): Record<string, string> {
  const app = b.appliance;
  const contract: Record<(typeof CONTRACT_VARIABLES)[number], string> = {
    version: o.version,
    seed_dir: o.seedDir,
    ssh_private_key_file: o.privateKeyFile,
    ssh_username: app.build.user,
    cpus: String(b.resources.cpus),
    memory: String(b.resources.memoryMiB),
    disk_size: `${b.resources.diskGiB}G`,
    accelerator: o.accelerator,
    output_directory: o.outputDirectory,
  };
  const optional: Record<(typeof OPTIONAL_VARIABLES)[number], string> = {
    lab_driver: app.lab.driver,
    lab_settings: labSettingsLines(app, b.resources),
    build_type: o.buildType,
  };
  const vars: Record<string, string> = { ...contract };
  for (const [k, v] of Object.entries(optional)) if (o.declared.has(k)) vars[k] = v;
  return { ...vars, ...app.build.variables, ...o.baseImage, ...o.userVars };
}

/**
 * The template directory to hand to Packer. Packer >= 1.7 takes it as it is (`packer init` reads
 * required_plugins); Packer 1.6 rejects `required_plugins`, so it gets a copy without the files that hold
 * one, with the directories the template reaches through `${path.root}/../NAME` linked beside the copy.
 */
export async function templateForPacker(template: string, hasInit: boolean, workDir: string): Promise<string> {
  if (hasInit) return template;
  const files = await templateFiles(template);
  const texts = await Promise.all(files.map(async (f) => ({ f, text: await readFile(f, 'utf8') })));
  const withPlugins = texts.filter((t) => t.f.endsWith('.hcl') && requiredPluginBlocks(t.text).length > 0);
  if (withPlugins.length === 0) return template;
  const copy = join(workDir, 'template', basename(template));
  await mkdir(copy, { recursive: true });
  for (const t of texts) if (!withPlugins.includes(t)) await copyFile(t.f, join(copy, basename(t.f)));
  // Files the template reads relative to its own directory (seed templates, scripts) come along too.
  for (const entry of await readdir(template, { withFileTypes: true })) {
    if (/\.pkr\.(hcl|json)$/.test(entry.name)) continue;
    await symlink(join(template, entry.name), join(copy, entry.name));
  }
  const siblings = new Set<string>();
  for (const t of texts) for (const m of t.text.matchAll(/path\.root\}\/\.\.\/([A-Za-z0-9_.-]+)/g)) siblings.add(m[1]!);
  for (const s of siblings) await symlink(join(dirname(template), s), join(dirname(copy), s)).catch(() => undefined);
  return copy;
}

/** Removes a directory Packer wrote before (an output directory Packer refuses to reuse). */
export const clearDirectory = (dir: string) => rm(dir, { recursive: true, force: true });

