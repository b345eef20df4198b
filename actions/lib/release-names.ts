/**
 * The names and paths every labforge component agrees on (see docs/ and the design notes): appliance
 * names, build types, release tags, artifact base names and the storage layout.
 */
import semver from 'semver';
import { InputError } from './inputs.js';

/** What an appliance name looks like (the `name` of appliance.yml, as its schema says). */
export const APPLIANCE_NAME_PATTERN = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/**
 * The appliance a release belongs to when nothing names one: OVAs, metadata and catalog entries made
 * before releases carried their appliance were all of the Hedgehog lab appliance.
 */
export const LEGACY_APPLIANCE = 'hedgehog-lab';

export function isApplianceName(value: string): boolean {
  return APPLIANCE_NAME_PATTERN.test(value);
}

/** Returns `value` if it is an appliance name; otherwise an {@link InputError} naming `input`. */
export function checkApplianceName(value: string, input = 'appliance'): string {
  if (!isApplianceName(value)) {
    throw new InputError(input, `'${value.slice(0, 80)}' is not an appliance name`, 'use lower-case letters, digits and single hyphens, starting with a letter (the name in appliance.yml, e.g. hedgehog-lab)');
  }
  return value;
}

export const BUILD_TYPES = ['standard', 'prewarmed'] as const;
export type BuildType = (typeof BUILD_TYPES)[number];

export function isBuildType(value: string): value is BuildType {
  return (BUILD_TYPES as readonly string[]).includes(value);
}

/**
 * `<appliance>-<build-type>-<version>`: the base name of the OVA and its companion files
 * (`hedgehog-lab-standard-1.4.0`). Throws an {@link InputError} (input `appliance`) for a name that is not
 * an appliance name.
 */
export function artifactBaseName(appliance: string, buildType: BuildType, version: string): string {
  return `${checkApplianceName(appliance)}-${buildType}-${version}`;
}

/**
 * Reads an artifact base name (or a file name starting with one: `.ova`, `.ova.sha256`, `.metadata.json`)
 * back into its appliance, build type and version. Undefined when it does not follow the naming.
 */
export function parseArtifactBaseName(name: string): { appliance: string; buildType: BuildType; version: string } | undefined {
  const base = name.replace(/(\.ova(\.sha256)?|\.metadata\.json)$/, '');
  const m = /^([a-z][a-z0-9]*(?:-[a-z0-9]+)*)-(standard|prewarmed)-(.+)$/.exec(base);
  if (!m || semver.valid(m[3] ?? '') === null) return undefined;
  return { appliance: m[1] ?? '', buildType: m[2] as BuildType, version: m[3] ?? '' };
}

/** `releases/v<version>/<build-type>/`, under an optional storage prefix. */
export function releasePrefix(buildType: BuildType, version: string, prefix = ''): string {
  const base = prefix.replace(/^\/+|\/+$/g, '');
  return `${base ? `${base}/` : ''}releases/v${version}/${buildType}/`;
}

export interface ReleaseTag {
  buildType: BuildType;
  version: string;
  /** The `.N` of `vX.Y.Z-prewarmed.N`: a rebuild of the same pre-warmed release. */
  rebuild?: number;
}

/**
 * Reads a release tag: `vX.Y.Z` (any semver, e.g. `v1.4.0-rc.1`) is a standard release,
 * `vX.Y.Z-prewarmed` or `vX.Y.Z-prewarmed.N` a pre-warmed one. Returns undefined for anything else.
 * Accepts a bare tag or a full `refs/tags/…` ref.
 */
export function parseReleaseTag(tagOrRef: string): ReleaseTag | undefined {
  const tag = tagOrRef.replace(/^refs\/tags\//, '');
  if (!tag.startsWith('v')) return undefined;
  const body = tag.slice(1);
  const warm = /^(.+)-prewarmed(?:\.(\d+))?$/.exec(body);
  if (warm) {
    const version = warm[1] ?? '';
    if (semver.valid(version) === null) return undefined;
    return warm[2] === undefined ? { buildType: 'prewarmed', version } : { buildType: 'prewarmed', version, rebuild: Number(warm[2]) };
  }
  if (semver.valid(body) === null || body.includes('prewarmed')) return undefined;
  return { buildType: 'standard', version: body };
}

/** The tag a release of this type and version is published under. */
export function releaseTag(buildType: BuildType, version: string): string {
  return buildType === 'prewarmed' ? `v${version}-prewarmed` : `v${version}`;
}
