/**
 * Third-party action STAND-INS for the workflow runner stand-in (a test double for GitHub; see index.ts).
 * A `uses: owner/name@ref` step runs only when a stand-in is registered for `owner/name` (any version or
 * SHA); any other third-party action is refused. The defaults replace, locally:
 *   actions/checkout          a `git clone` of the repository mapped for `repository` at `ref` into `path`
 *   actions/setup-node        checks that the local node's major version is `node-version`
 *   google-github-actions/auth  fails: there is no Google Cloud here (workflows must skip it by `if:`)
 *   actions/upload-artifact   copies `path` to <runDir>/artifacts/<name>/ (v4: a name is uploaded once)
 *   actions/download-artifact copies <runDir>/artifacts/<name>/ into `path`
 *   actions/attest-build-provenance  records the subject and its sha256 in the run's attestations
 * Inputs a stand-in cannot honour (sparse checkout, submodules, caches, globs, …) are refused when set.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { cloneAt, resolveCommit, type Repositories } from './repos.js';
import { UnsupportedError, type JsonObject, type JsonValue } from './types.js';

export interface StandInContext {
  /** The step's `uses:` as written. */
  uses: string;
  /** The step's evaluated `with:` (there is no action.yml, so no defaults). */
  inputs: Record<string, string>;
  /** The step's environment. */
  env: Record<string, string>;
  workspace: string;
  runnerTemp: string;
  runDir: string;
  github: JsonObject;
  repositories: Repositories;
  /** The job's effective `permissions:` (null: the repository default, which has no id-token). */
  permissions: JsonValue;
  signal?: AbortSignal;
  /** A line for the step's log (masked). */
  log(line: string): void;
  /** An annotation of the step. */
  annotate(level: 'error' | 'warning' | 'notice', message: string): void;
  /** Records an attestation in the run result. */
  attest(subject: { subjectName: string; digest: string; path?: string }): void;
}

export interface StandInResult {
  outputs?: Record<string, string>;
}

/** Replaces a third-party action. Throw an Error to fail the step, an UnsupportedError to refuse the run. */
export type StandIn = (ctx: StandInContext) => Promise<StandInResult | void> | StandInResult | void;

/** `actions/checkout@v4` → `actions/checkout`; `owner/repo/sub/path@sha` → `owner/repo/sub/path`. */
export function standInKey(uses: string): string {
  return uses.replace(/@.*$/, '').toLowerCase();
}

/** Refuses inputs the stand-in does not know, and known ones it cannot honour when they are set. */
function checkInputs(ctx: StandInContext, accepted: string[], refusedWhenSet: Record<string, (v: string) => boolean> = {}): void {
  for (const [k, v] of Object.entries(ctx.inputs)) {
    if (k in refusedWhenSet) {
      if (refusedWhenSet[k]!(v)) throw new UnsupportedError(`${ctx.uses}: input ${k}: ${JSON.stringify(v)} is not implemented by its stand-in`);
    } else if (!accepted.includes(k)) {
      throw new UnsupportedError(`${ctx.uses}: input ${k} is not known to its stand-in (known: ${[...accepted, ...Object.keys(refusedWhenSet)].join(', ')})`);
    }
  }
}

const nonEmpty = (v: string) => v.trim() !== '';
const isTrue = (v: string) => v.trim().toLowerCase() === 'true';

/** A path input resolved in the workspace; refuses globs and exclusions (the stand-ins copy plain paths). */
function plainPaths(ctx: StandInContext, input: string): string[] {
  const lines = (ctx.inputs[input] ?? '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  for (const l of lines) if (/[*?[\]]/.test(l) || l.startsWith('!')) throw new UnsupportedError(`${ctx.uses}: ${input} '${l}': globs and exclusions are not implemented by its stand-in`);
  return lines.map((l) => resolve(ctx.workspace, l.replace(/^~(?=\/|$)/, ctx.env['HOME'] ?? '~')));
}

function filesUnder(path: string, includeHidden: boolean): string[] {
  if (!existsSync(path)) return [];
  if (statSync(path).isFile()) return [path];
  const out: string[] = [];
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (!includeHidden && e.name.startsWith('.')) continue;
    const p = join(path, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, includeHidden));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function commonDir(paths: string[]): string {
  const parts = paths.map((p) => p.split(sep));
  const first = parts[0] ?? [];
  let n = 0;
  while (n < first.length && parts.every((p) => p[n] === first[n])) n++;
  return first.slice(0, n).join(sep) || sep;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function permits(permissions: JsonValue, scope: string): boolean {
  if (permissions === 'write-all') return true;
  if (permissions && typeof permissions === 'object' && !Array.isArray(permissions)) return permissions[scope] === 'write';
  return false;
}

const checkout: StandIn = (ctx) => {
  checkInputs(ctx, ['repository', 'ref', 'path', 'persist-credentials', 'clean', 'fetch-depth', 'fetch-tags', 'show-progress', 'token', 'set-safe-directory', 'github-server-url'], {
    lfs: isTrue,
    submodules: (v) => v !== '' && v !== 'false',
    'sparse-checkout': nonEmpty,
    filter: nonEmpty,
    'ssh-key': nonEmpty,
    'ssh-known-hosts': nonEmpty,
    'ssh-strict': () => false,
    'ssh-user': () => false,
    'sparse-checkout-cone-mode': () => false,
  });
  const self = String(ctx.github['repository'] ?? '');
  const repository = ctx.inputs['repository'] || self;
  const dir = ctx.repositories.find(repository);
  if (!dir) throw new Error(`Not Found: repository '${repository}' does not exist (it is not mapped in the runner stand-in's repositories)`);
  const isSelf = repository.toLowerCase() === self.toLowerCase();
  const ref = ctx.inputs['ref'] || (isSelf ? String(ctx.github['sha']) : 'HEAD');
  const sha = resolveCommit(dir, ref);
  if (!sha) throw new Error(`A branch or tag with the name '${ref}' could not be found in ${repository}`);
  const target = resolve(ctx.workspace, ctx.inputs['path'] ?? '');
  const rel = relative(ctx.workspace, target);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new Error(`Repository path '${target}' is not under '${ctx.workspace}'`);
  if (existsSync(target) && readdirSync(target).length > 0) {
    if ((ctx.inputs['clean'] ?? 'true') === 'false') throw new UnsupportedError(`${ctx.uses}: clean: false into a non-empty directory is not implemented by its stand-in`);
    ctx.log(`Deleting the contents of '${target}'`);
    for (const e of readdirSync(target)) rmSync(join(target, e), { recursive: true, force: true });
  }
  mkdirSync(dirname(target), { recursive: true });
  ctx.log(`Cloning ${repository} (${dir}) at ${ref} (${sha}) into ${target}`);
  cloneAt(dir, sha, target);
  return { outputs: { ref: ctx.inputs['ref'] || (isSelf ? String(ctx.github['ref']) : ''), commit: sha } };
};

const setupNode: StandIn = (ctx) => {
  checkInputs(ctx, ['node-version', 'token', 'always-auth', 'check-latest', 'architecture'], {
    'node-version-file': nonEmpty,
    cache: nonEmpty,
    'cache-dependency-path': nonEmpty,
    'registry-url': nonEmpty,
    scope: nonEmpty,
    mirror: nonEmpty,
    'mirror-token': nonEmpty,
  });
  const wanted = ctx.inputs['node-version'] ?? '';
  const major = /^v?(\d+)(\.(\d+|x|\*))*$/.exec(wanted.trim())?.[1];
  if (!major) throw new UnsupportedError(`${ctx.uses}: node-version '${wanted}' is not implemented by its stand-in (give a major version such as 20)`);
  const r = spawnSync('node', ['--version'], { env: ctx.env, encoding: 'utf8' });
  const local = r.stdout?.trim() ?? '';
  if (r.status !== 0 || !local) throw new Error(`node is not installed on this runner (node --version: ${r.error?.message ?? r.stderr})`);
  if (local.replace(/^v/, '').split('.')[0] !== major) throw new Error(`node-version ${wanted} wanted, but this runner has node ${local} (the stand-in installs nothing)`);
  ctx.log(`Found in cache @ node ${local}`);
  return { outputs: { 'node-version': local } };
};

const googleAuth: StandIn = () => {
  throw new Error('no Google Cloud in this stand-in: google-github-actions/auth cannot log in (use a file:// destination, whose runs skip this step by its if:)');
};

const uploadArtifact: StandIn = (ctx) => {
  checkInputs(ctx, ['name', 'path', 'if-no-files-found', 'retention-days', 'compression-level', 'overwrite', 'include-hidden-files']);
  const name = ctx.inputs['name'] || 'artifact';
  if (/[":<>|*?\\/\r\n]/.test(name)) throw new Error(`The artifact name is not valid: ${name}. Contains the following character: one of " : < > | * ? \\ / CR LF`);
  const paths = plainPaths(ctx, 'path');
  if (paths.length === 0) throw new Error('Input required and not supplied: path');
  const hidden = isTrue(ctx.inputs['include-hidden-files'] ?? 'false');
  const files = paths.flatMap((p) => filesUnder(p, hidden));
  const mode = ctx.inputs['if-no-files-found'] || 'warn';
  if (files.length === 0) {
    const msg = `No files were found with the provided path: ${ctx.inputs['path']}. No artifacts will be uploaded.`;
    if (mode === 'error') throw new Error(msg);
    if (mode === 'warn') ctx.annotate('warning', msg);
    else ctx.log(msg);
    return {};
  }
  const dest = join(ctx.runDir, 'artifacts', name);
  if (existsSync(dest)) {
    if (!isTrue(ctx.inputs['overwrite'] ?? 'false')) throw new Error('Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict: an artifact with this name already exists on the workflow run');
    rmSync(dest, { recursive: true, force: true });
  }
  const root = paths.length === 1 && existsSync(paths[0]!) && statSync(paths[0]!).isDirectory() ? paths[0]! : commonDir(paths.map((p) => (existsSync(p) && statSync(p).isDirectory() ? p : dirname(p))));
  const digest = createHash('sha256');
  for (const f of files.sort()) {
    const rel = relative(root, f);
    mkdirSync(dirname(join(dest, rel)), { recursive: true });
    cpSync(f, join(dest, rel));
    digest.update(`${rel}\0${sha256File(f)}\n`);
  }
  ctx.log(`Uploaded ${files.length} file(s) as artifact ${name}`);
  const id = String(readdirSync(join(ctx.runDir, 'artifacts')).length);
  return { outputs: { 'artifact-id': id, 'artifact-url': `${String(ctx.github['server_url'])}/${String(ctx.github['repository'])}/actions/runs/${String(ctx.github['run_id'])}/artifacts/${id}`, 'artifact-digest': digest.digest('hex') } };
};

const downloadArtifact: StandIn = (ctx) => {
  checkInputs(ctx, ['name', 'path'], { pattern: nonEmpty, 'merge-multiple': isTrue, 'github-token': nonEmpty, repository: nonEmpty, 'run-id': nonEmpty });
  const path = resolve(ctx.workspace, ctx.inputs['path'] || '.');
  const store = join(ctx.runDir, 'artifacts');
  const name = ctx.inputs['name'];
  if (name) {
    if (!existsSync(join(store, name))) throw new Error(`Unable to download artifact(s): Artifact not found for name: ${name}`);
    mkdirSync(path, { recursive: true });
    cpSync(join(store, name), path, { recursive: true });
  } else {
    for (const n of existsSync(store) ? readdirSync(store) : []) cpSync(join(store, n), join(path, n), { recursive: true });
  }
  ctx.log(`Downloaded ${name ?? 'all artifacts'} to ${path}`);
  return { outputs: { 'download-path': path } };
};

const attestBuildProvenance: StandIn = (ctx) => {
  checkInputs(ctx, ['subject-path', 'subject-digest', 'subject-name', 'show-summary', 'github-token'], { 'subject-checksums': nonEmpty, 'push-to-registry': isTrue });
  if (!permits(ctx.permissions, 'id-token') || !permits(ctx.permissions, 'attestations')) {
    throw new Error('Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable: the job needs permissions id-token: write and attestations: write');
  }
  const byPath = nonEmpty(ctx.inputs['subject-path'] ?? '');
  const byDigest = nonEmpty(ctx.inputs['subject-digest'] ?? '');
  if (byPath === byDigest) throw new Error('One of subject-path or subject-digest must be provided');
  const subjects: { subjectName: string; digest: string; path?: string }[] = [];
  if (byPath) {
    for (const p of plainPaths(ctx, 'subject-path')) {
      if (!existsSync(p) || !statSync(p).isFile()) throw new Error(`Could not find subject at path ${p}`);
      subjects.push({ subjectName: basename(p), digest: `sha256:${sha256File(p)}`, path: p });
    }
  } else {
    const digest = ctx.inputs['subject-digest']!.trim();
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`subject-digest must be sha256:<64 hex digits>, got '${digest}'`);
    if (!nonEmpty(ctx.inputs['subject-name'] ?? '')) throw new Error('subject-name must be provided when using subject-digest');
    subjects.push({ subjectName: ctx.inputs['subject-name']!.trim(), digest });
  }
  for (const s of subjects) ctx.attest(s);
  const bundle = join(ctx.runnerTemp, `attestation-${subjects.length}-${Date.now()}.json`);
  writeFileSync(bundle, JSON.stringify({ standin: true, subjects }, null, 2));
  return { outputs: { 'bundle-path': bundle, 'attestation-id': String(subjects.length), 'attestation-url': `${String(ctx.github['server_url'])}/${String(ctx.github['repository'])}/attestations/standin` } };
};

/** The stand-ins every run has (the caller may add or replace them through the `standins` option). */
export const defaultStandIns: Record<string, StandIn> = {
  'actions/checkout': checkout,
  'actions/setup-node': setupNode,
  'google-github-actions/auth': googleAuth,
  'actions/upload-artifact': uploadArtifact,
  'actions/download-artifact': downloadArtifact,
  'actions/attest-build-provenance': attestBuildProvenance,
};
