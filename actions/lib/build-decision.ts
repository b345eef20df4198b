/**
 * Decides what a run builds — which appliance, standard or pre-warmed, which version — and everything that
 * follows from it. The appliance (a directory with appliance.yml, default `packer/hedgehog-lab`) is read
 * first: an invalid manifest is an input error before anything else is looked at.
 *
 * Precedence (first rule that decides wins):
 *   1. the `build-type` input (`standard` | `prewarmed`; `auto` defers);
 *   2. a `workflow_dispatch` event's `inputs.build_type` / `inputs.version`;
 *   3. a tag push: `refs/tags/vX.Y.Z` → standard, `refs/tags/vX.Y.Z-prewarmed[.N]` → prewarmed;
 *   4. the `ova` input: the ProductSection property `buildType` of an existing OVA;
 *   5. the `marker` input: a guest marker file (`/etc/hedgehog-lab/build-type`);
 *   6. otherwise `standard`.
 * The `version` input overrides any version found in the event, the tag or the OVA.
 *
 * A `push` of a tag that is neither `vX.Y.Z` nor `vX.Y.Z-prewarmed[.N]` is refused whatever else decides: a
 * moving tag such as `v1` (or `v1.4`) names no release. The decision also says whether the upload may
 * replace published files ({@link rebuildOverwrites}) and which runner labels the build job runs on (the
 * manifest's, or the validated `runs-on` input).
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative } from 'node:path';
import { loadAppliance, manifestPathOf, type Appliance } from './appliance.js';
import { printable } from './escape.js';
import { InputError, checkInputFile, checkVersion, readChoice, readString, readVersion, type InputGetter } from './inputs.js';
import { OvaError, readOvaProperties } from './ova-read.js';
import { BUILD_TYPES, artifactBaseName, isBuildType, parseReleaseTag, releasePrefix, releaseTag, type BuildType } from './release-names.js';

export type DecisionSource = 'input' | 'dispatch' | 'tag' | 'ova' | 'marker' | 'default';

export interface DetectOptions {
  /** `standard`, `prewarmed` or `auto` (default). */
  buildType?: BuildType | 'auto';
  /** Overrides the version found anywhere else. */
  version?: string;
  /** Path of an existing OVA whose descriptor names the build type. */
  ova?: string;
  /** Path of a guest marker file. */
  marker?: string;
  /** `GITHUB_EVENT_NAME`. */
  eventName?: string;
  /** `GITHUB_EVENT_PATH`: the event payload JSON. */
  eventPath?: string;
  /** `GITHUB_REF`. */
  ref?: string;
  /** The appliance directory (holding appliance.yml), or the manifest itself; default `packer/hedgehog-lab`. */
  appliance?: string;
  /** Runner labels that replace the manifest's (already validated: see {@link parseRunnerLabels}). */
  runnerLabels?: string[];
}

export interface BuildDecision {
  /** The appliance's name (from its manifest). */
  appliance: string;
  /** The appliance directory, as given (relative or absolute). */
  applianceDir: string;
  buildType: BuildType;
  version: string;
  /** Which rule decided the build type. */
  source: DecisionSource;
  /** Where the version came from. */
  versionSource: 'input' | 'dispatch' | 'tag' | 'ova' | 'default';
  /** One sentence a person can check: why this build type. */
  reason: string;
  /** The manifest's Packer template (file or directory), relative or absolute as the appliance was given. */
  template: string;
  /** Whether the lab is initialized at build time (the vlab-warm stage runs). */
  warm: boolean;
  /** The manifest says `kvm: required` (else KVM is only preferred and TCG works). */
  requiresKvm: boolean;
  /** The runner labels the build job runs on: the `runs-on` input when given, else the manifest's `runner-labels`. */
  runnerLabels: string[];
  /** Where the runner labels came from. */
  runnerLabelsSource: 'input' | 'manifest';
  /**
   * Whether the upload may replace the published files of this version and type: only for the `push` of a
   * rebuild tag `vX.Y.Z-prewarmed.N` that this build is (pre-warmed, version X.Y.Z). See {@link rebuildOverwrites}.
   */
  overwrite: boolean;
  artifactName: string;
  storagePrefix: string;
  /** The release tag this build is published under. */
  tag: string;
  timeoutMinutes: number;
  /** The manifest's first-boot expectation for this build type, with its basis (for the metadata and notes). */
  firstBoot: string;
  /** How an attendee logs in (the manifest's login.how), for the release notes and the portal. */
  login: string;
}

/** Version used when nothing names one: a development build. */
export const DEFAULT_VERSION = '0.0.0-dev';

/** The appliance a build makes when no `appliance` input names one. */
export const DEFAULT_APPLIANCE_DIR = 'packer/hedgehog-lab';

/**
 * Allowance for packing the OVA and uploading it, per GiB of the manifest's expected image (at least
 * {@link MIN_PACK_UPLOAD_MINUTES}): streamOptimized compression and a single upload stream each move a few
 * tens of MiB/s on a CI runner.
 */
const PACK_UPLOAD_MINUTES_PER_GIB = 1;
const MIN_PACK_UPLOAD_MINUTES = 10;

/**
 * The job's time budget: the manifest's build timeout, plus (pre-warmed) every warm timeout — SSH, lab
 * init, readiness, shutdown — plus the packing and upload allowance. Each stage stops itself at its own
 * timeout, so the job budget is their sum and never cuts a stage short.
 */
export function timeoutMinutesOf(app: Appliance, buildType: BuildType): number {
  const warm = app.warm;
  const warmMinutes = buildType === 'prewarmed' ? warm.sshTimeoutMinutes + warm.initTimeoutMinutes + warm.readyTimeoutMinutes + Math.ceil(warm.shutdownTimeoutSeconds / 60) : 0;
  const packUpload = Math.max(MIN_PACK_UPLOAD_MINUTES, Math.ceil(app.build.expectedImageGiB * PACK_UPLOAD_MINUTES_PER_GIB));
  return app.build.timeoutMinutes + warmMinutes + packUpload;
}

/**
 * The manifest's template as the caller would write it: relative to where they are when the appliance was
 * given relative (`packer/hedgehog-lab` with `template: .` → `packer/hedgehog-lab`), absolute when it was
 * given absolute.
 */
function templateAsGiven(given: string, app: Appliance): string {
  if (isAbsolute(given)) return app.template;
  const dir = dirname(manifestPathOf(given));
  const inside = relative(app.dir, app.template);
  return inside === '' ? normalize(dir) : join(dir, inside);
}

/** What one runner label may look like: no white space, no commas, quotes, brackets or braces. */
const RUNNER_LABEL = /^[^\s,"'[\]{}]{1,100}$/;

/**
 * Reads the `runs-on` input: a JSON array of runner labels (`["self-hosted","linux","x64","kvm"]`, or an ARC
 * scale set's name as `["arc-kvm"]`) or a single label (`arc-kvm`). Every label is a non-empty word without
 * white space, commas, quotes or brackets, and no label appears twice. Throws an {@link InputError} naming
 * `input` otherwise.
 */
export function parseRunnerLabels(raw: string, input = 'runs-on'): string[] {
  const text = raw.trim();
  const fix = 'give a JSON array of runner labels such as ["self-hosted","linux","x64","kvm"], or one label such as arc-kvm';
  let labels: unknown;
  if (text.startsWith('[')) {
    try {
      labels = JSON.parse(text);
    } catch {
      throw new InputError(input, `'${text.slice(0, 80)}' is not a JSON array`, fix);
    }
  } else if (text.startsWith('{')) {
    throw new InputError(input, 'is a JSON object (a runner group), which labforge does not take', fix);
  } else {
    labels = [text];
  }
  if (!Array.isArray(labels) || labels.length === 0) throw new InputError(input, `'${text.slice(0, 80)}' names no runner label`, fix);
  const seen = new Set<string>();
  for (const label of labels as unknown[]) {
    if (typeof label !== 'string' || !RUNNER_LABEL.test(label)) {
      const shown = typeof label === 'string' ? `'${label.slice(0, 80)}'` : String(JSON.stringify(label)).slice(0, 80);
      throw new InputError(input, `${shown} is not a runner label`, `${fix}; a label has no white space, commas, quotes or brackets`);
    }
    if (seen.has(label)) throw new InputError(input, `names the label '${label}' twice`, 'list each label once');
    seen.add(label);
  }
  return labels as string[];
}

/**
 * Whether this build may replace the published files of its version and type. True only for the `push` of
 * a rebuild tag `vX.Y.Z-prewarmed.N` (which exists to replace the stored pre-warmed build of X.Y.Z) when the
 * build is that one: pre-warmed, version X.Y.Z. A `workflow_dispatch` run from such a tag, a plain
 * `vX.Y.Z-prewarmed` tag, or a build whose inputs name another type or version never overwrites.
 */
export function rebuildOverwrites(event: { eventName?: string; ref?: string }, buildType: BuildType, version: string): boolean {
  if (event.eventName !== 'push' || !event.ref?.startsWith('refs/tags/')) return false;
  const tag = parseReleaseTag(event.ref);
  return tag !== undefined && tag.rebuild !== undefined && tag.buildType === 'prewarmed' && buildType === 'prewarmed' && version === tag.version;
}

/** Reads and validates the detect-build-type inputs (the action's and the CLI's names). */
export function readDetectOptions(get: InputGetter, env: NodeJS.ProcessEnv = process.env): DetectOptions {
  const runsOn = readString(get, 'runs-on');
  return {
    buildType: readChoice(get, 'build-type', [...BUILD_TYPES, 'auto'] as const, 'auto'),
    version: readVersion(get, 'version'),
    ova: readString(get, 'ova') || undefined,
    marker: readString(get, 'marker') || undefined,
    eventName: readString(get, 'event-name', env.GITHUB_EVENT_NAME ?? '') || undefined,
    eventPath: readString(get, 'event-path', env.GITHUB_EVENT_PATH ?? '') || undefined,
    ref: readString(get, 'ref', env.GITHUB_REF ?? '') || undefined,
    appliance: readString(get, 'appliance', DEFAULT_APPLIANCE_DIR),
    ...(runsOn ? { runnerLabels: parseRunnerLabels(runsOn) } : {}),
  };
}

interface DispatchInputs {
  buildType?: string;
  version?: string;
}

async function readDispatchInputs(eventPath: string | undefined): Promise<DispatchInputs> {
  if (!eventPath) {
    throw new InputError('event-path', 'a workflow_dispatch event needs its payload, but no event path was given', 'set GITHUB_EVENT_PATH or --event-path to the event JSON');
  }
  let text: string;
  try {
    text = await readFile(eventPath, 'utf8');
  } catch (e) {
    throw new InputError('event-path', `cannot read ${eventPath} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'point it at the event payload JSON the runner wrote');
  }
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    throw new InputError('event-path', `${eventPath} is not JSON`, 'point it at the event payload JSON the runner wrote');
  }
  const inputs = (payload as { inputs?: Record<string, unknown> } | null)?.inputs ?? {};
  const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
  return { buildType: str(inputs['build_type']), version: str(inputs['version']) };
}

async function readMarker(markerPath: string): Promise<BuildType> {
  // A device, FIFO or symlink to one is refused before any read: /dev/zero would be read to 2 GiB, a FIFO forever.
  checkInputFile(markerPath, 'marker', { what: 'a build-type marker file such as /etc/hedgehog-lab/build-type' });
  let text: string;
  try {
    text = await readFile(markerPath, 'utf8');
  } catch (e) {
    throw new InputError('marker', `cannot read ${markerPath} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of a build-type marker file such as /etc/hedgehog-lab/build-type');
  }
  const word = text.trim();
  if (!isBuildType(word)) {
    throw new InputError('marker', `${markerPath} says '${word.slice(0, 40)}', which is not a build type`, `the marker must hold one word: ${BUILD_TYPES.join(' or ')}`);
  }
  return word;
}

async function readOvaBuildType(ovaPath: string): Promise<{ buildType: BuildType; version?: string }> {
  let props: Record<string, string>;
  try {
    props = await readOvaProperties(ovaPath);
  } catch (e) {
    if (e instanceof OvaError) throw new InputError('ova', e.message, 'give the path of an OVA built by labforge (labforge pack-ova)');
    throw e;
  }
  const word = props['buildType'];
  if (word === undefined) {
    throw new InputError('ova', `${ovaPath} has no ProductSection property 'buildType' (class labforge)`, 'use an OVA packed by labforge, or set build-type explicitly');
  }
  if (!isBuildType(word)) {
    throw new InputError('ova', `${ovaPath} says buildType='${word}', which is not a build type`, `repack it with build type ${BUILD_TYPES.join(' or ')}`);
  }
  const version = props['version'];
  return { buildType: word, version: version && version !== '' ? version : undefined };
}

/**
 * Reads the appliance, decides the build type and version, and derives the template, runner, names and
 * budget from them.
 */
export async function detectBuildType(options: DetectOptions): Promise<BuildDecision> {
  const applianceDir = options.appliance ?? DEFAULT_APPLIANCE_DIR;
  const app = await loadAppliance(applianceDir, 'appliance');
  let buildType: BuildType | undefined;
  let source: DecisionSource = 'default';
  let reason = 'nothing named a build type, so the standard build is made';
  const versions: { value: string; from: BuildDecision['versionSource'] }[] = [];
  if (options.version) versions.push({ value: checkVersion(options.version, 'version'), from: 'input' });

  if (options.buildType && options.buildType !== 'auto') {
    if (!isBuildType(options.buildType)) {
      throw new InputError('build-type', `'${options.buildType}' is not a build type`, `use ${BUILD_TYPES.join(', ')} or auto`);
    }
    buildType = options.buildType;
    source = 'input';
    reason = `the build-type input says ${buildType}`;
  }

  if (options.eventName === 'workflow_dispatch') {
    const dispatch = await readDispatchInputs(options.eventPath);
    if (dispatch.version) versions.push({ value: checkVersion(dispatch.version, 'inputs.version'), from: 'dispatch' });
    if (!buildType && dispatch.buildType && dispatch.buildType !== 'auto') {
      if (!isBuildType(dispatch.buildType)) {
        throw new InputError('inputs.build_type', `the workflow_dispatch input build_type is '${dispatch.buildType}'`, `choose ${BUILD_TYPES.join(' or ')} when running the workflow`);
      }
      buildType = dispatch.buildType;
      source = 'dispatch';
      reason = `the workflow was dispatched with build_type=${buildType}`;
    }
  }

  let unmatchedTag: string | undefined;
  if (options.ref?.startsWith('refs/tags/')) {
    const tag = parseReleaseTag(options.ref);
    if (tag) {
      versions.push({ value: tag.version, from: 'tag' });
      if (!buildType) {
        buildType = tag.buildType;
        source = 'tag';
        reason = `the pushed tag ${options.ref.slice('refs/tags/'.length)} names a ${buildType} release`;
      }
    } else {
      unmatchedTag = options.ref.slice('refs/tags/'.length);
      if (options.eventName === 'push') {
        throw new InputError('ref', `tag '${unmatchedTag}' is neither vX.Y.Z nor vX.Y.Z-prewarmed[.N], and a pushed tag must name a release`, 'push a release tag such as v1.4.0 or v1.4.0-prewarmed; a moving tag such as v1 is never built');
      }
    }
  }

  if (!buildType && options.ova) {
    const ova = await readOvaBuildType(options.ova);
    if (ova.version) versions.push({ value: checkVersion(ova.version, 'ova'), from: 'ova' });
    buildType = ova.buildType;
    source = 'ova';
    reason = `the OVA ${printable(options.ova)} was built as ${buildType}`;
  }

  if (!buildType && options.marker) {
    buildType = await readMarker(options.marker);
    source = 'marker';
    reason = `the guest marker ${printable(options.marker)} says ${buildType}`;
  }

  if (!buildType && unmatchedTag !== undefined) {
    throw new InputError('ref', `tag '${unmatchedTag}' is neither vX.Y.Z nor vX.Y.Z-prewarmed[.N]`, 'push a tag such as v1.4.0 or v1.4.0-prewarmed, or set build-type explicitly');
  }

  const type: BuildType = buildType ?? 'standard';
  const chosen = versions[0] ?? { value: DEFAULT_VERSION, from: 'default' as const };
  const version = chosen.value;
  return {
    appliance: app.name,
    applianceDir,
    buildType: type,
    version,
    source,
    versionSource: chosen.from,
    reason,
    template: templateAsGiven(applianceDir, app),
    warm: type === 'prewarmed',
    requiresKvm: app.kvm === 'required',
    runnerLabels: options.runnerLabels ? [...options.runnerLabels] : [...app.runnerLabels],
    runnerLabelsSource: options.runnerLabels ? 'input' : 'manifest',
    overwrite: rebuildOverwrites(options, type, version),
    artifactName: artifactBaseName(app.name, type, version),
    storagePrefix: releasePrefix(type, version),
    tag: releaseTag(type, version),
    timeoutMinutes: timeoutMinutesOf(app, type),
    firstBoot: `${app.firstBoot[type].expectation} (${app.firstBoot[type].basis})`,
    login: app.login.how,
  };
}

/** The decision as the action's outputs (kebab-case; lists as JSON), which the CLI prints too. */
export function decisionOutputs(d: BuildDecision): Record<string, string> {
  return {
    appliance: d.appliance,
    'build-type': d.buildType,
    version: d.version,
    source: d.source,
    'version-source': d.versionSource,
    reason: d.reason,
    template: d.template,
    warm: String(d.warm),
    'requires-kvm': String(d.requiresKvm),
    'runner-labels': JSON.stringify(d.runnerLabels),
    overwrite: String(d.overwrite),
    'artifact-name': d.artifactName,
    'storage-prefix': d.storagePrefix,
    tag: d.tag,
    'timeout-minutes': String(d.timeoutMinutes),
    'first-boot': d.firstBoot,
    login: d.login,
  };
}
