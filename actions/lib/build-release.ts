/**
 * Publishes the GitHub release of one appliance build: reads the build's facts from its published
 * companion files, renders the notes, and creates or updates the release of the tag with the `.sha256`
 * and metadata files attached. Shared by `labforge release` and any action that wants to offer it.
 */
import { InputError, readBool, readChoice, readInt, readList, readName, readRequired, readString, type InputGetter } from './inputs.js';
import { checkReleaseAssets, publishRelease, type PublishedRelease } from './github-release.js';
import { readReleaseFacts, releaseTitle, renderReleaseNotes, type ReleaseFacts } from './release-notes.js';
import { parseReleaseTag, releaseTag } from './release-names.js';
import semver from 'semver';
import { basename } from 'node:path';
import { describeSbomFile } from './sbom-publish.js';

export interface BuildReleaseOptions {
  /** `<name>.ova.sha256`: names the OVA and its checksum; attached to the release. */
  sha256File: string;
  /** `<name>.metadata.json`: attached when given. */
  metadataFile?: string;
  /** `<name>.cdx.json`, the SBOM: attached when given; must be the one the metadata lists (same SHA-256). */
  sbomFile?: string;
  /** The release tag; default the pushed tag (`GITHUB_REF`), else the tag the build's type and version name. */
  tag?: string;
  /** `owner/name`; default `GITHUB_REPOSITORY`. */
  repository: string;
  /** Size of the OVA in bytes (overrides the metadata). */
  size?: number;
  downloadUrl?: string;
  urlExpiresHours?: number;
  portalUrl?: string;
  firstBoot?: string;
  reason?: string;
  /** Further files to attach. */
  assets: string[];
  /** Commit the tag is created from if it does not exist; default `GITHUB_SHA`. */
  target?: string;
  /** `auto`: a prerelease when the version has a prerelease part (1.4.0-rc.1). */
  prerelease: 'auto' | 'true' | 'false';
  apiUrl: string;
  /** Make every check of a real run (files, tag, repository, token present, assets), print the notes; call no API. */
  dryRun: boolean;
  /** The build run's URL for the notes; default from GITHUB_SERVER_URL/REPOSITORY/RUN_ID. */
  runUrl?: string;
  gitSha?: string;
  /** `owner/name` whose workflow attested the OVA's build provenance; the notes then show `gh attestation verify`. */
  attestationRepo?: string;
}

export interface BuildReleaseResult {
  tag: string;
  title: string;
  notes: string;
  facts: ReleaseFacts;
  /** Absent in a dry run. */
  release?: PublishedRelease;
}

/** Reads and validates the `labforge release` flags (kebab-case, as for an action). */
export function readBuildReleaseOptions(get: InputGetter, env: NodeJS.ProcessEnv = process.env): BuildReleaseOptions {
  const dryRun = readBool(get, 'dry-run', false);
  const repository = readString(get, 'repository', env.GITHUB_REPOSITORY ?? '');
  // A dry run makes every check the real run makes; it only skips the API calls.
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repository)) {
    throw new InputError('repository', repository === '' ? 'is empty and GITHUB_REPOSITORY is not set' : `'${repository}' is not owner/name`, 'give --repository OWNER/NAME');
  }
  const refTag = env.GITHUB_REF?.startsWith('refs/tags/') ? env.GITHUB_REF.slice('refs/tags/'.length) : '';
  const hours = get('url-expires-hours').trim() === '' ? undefined : readInt(get, 'url-expires-hours', 0, { min: 1, max: 24 * 7 });
  const downloadUrl = readString(get, 'download-url') || undefined;
  if (downloadUrl !== undefined && !/^https?:\/\/\S+$/.test(downloadUrl)) {
    throw new InputError('download-url', `'${downloadUrl.slice(0, 80)}' is not an http(s) URL`, 'give the url output of upload-artifact (public or signed)');
  }
  const apiUrl = readString(get, 'api-url', env.GITHUB_API_URL ?? 'https://api.github.com');
  if (!/^https?:\/\/[^\s/]+/.test(apiUrl)) throw new InputError('api-url', `'${apiUrl}' is not an http(s) URL`, 'give the REST API base URL, e.g. https://api.github.com');
  const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
  const attestationRepo = readString(get, 'attestation-repo') || undefined;
  if (attestationRepo !== undefined && !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(attestationRepo)) {
    throw new InputError('attestation-repo', `'${attestationRepo.slice(0, 80)}' is not owner/name`, 'give the repository whose workflow attested the OVA (github.repository), or leave the flag out');
  }
  return {
    sha256File: readRequired(get, 'sha256-file', 'give the <name>.ova.sha256 file published with the OVA'),
    metadataFile: readString(get, 'metadata-file') || undefined,
    sbomFile: readString(get, 'sbom-file') || undefined,
    tag: readName(get, 'tag', refTag, 'a tag such as v1.4.0') || undefined,
    repository,
    size: get('size').trim() === '' ? undefined : readInt(get, 'size', 0, { min: 1 }),
    downloadUrl,
    urlExpiresHours: hours,
    portalUrl: readString(get, 'portal-url') || undefined,
    firstBoot: readString(get, 'first-boot') || undefined,
    reason: readString(get, 'reason') || undefined,
    assets: readList(get, 'assets'),
    target: readString(get, 'target', env.GITHUB_SHA ?? '') || undefined,
    prerelease: readChoice(get, 'prerelease', ['auto', 'true', 'false'] as const, 'auto'),
    apiUrl,
    dryRun,
    runUrl: env.GITHUB_RUN_ID && env.GITHUB_REPOSITORY ? `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}` : undefined,
    gitSha: env.GITHUB_SHA || undefined,
    attestationRepo,
  };
}

/**
 * Publishes the release of one build; a dry run makes the same checks (files, tag, token present, assets)
 * and renders the notes, skipping only the API calls. The tag must name the same build
 * type and version as the files: a `v1.4.0-prewarmed` release never gets a standard build's checksum.
 */
export async function publishBuildRelease(options: BuildReleaseOptions, token: string, log: (line: string) => void = () => undefined): Promise<BuildReleaseResult> {
  const facts = await readReleaseFacts({
    sha256File: options.sha256File,
    metadataFile: options.metadataFile,
    overrides: {
      size: options.size,
      downloadUrl: options.downloadUrl,
      urlExpiresHours: options.urlExpiresHours,
      portalUrl: options.portalUrl,
      firstBoot: options.firstBoot,
      reason: options.reason,
      runUrl: options.runUrl,
      gitSha: options.gitSha,
      attestationRepo: options.attestationRepo,
    },
  });
  const tag = options.tag ?? releaseTag(facts.buildType, facts.version);
  const named = parseReleaseTag(tag);
  if (!named) throw new InputError('tag', `'${tag}' is neither vX.Y.Z nor vX.Y.Z-prewarmed[.N]`, 'give a release tag such as v1.4.0 or v1.4.0-prewarmed');
  if (named.buildType !== facts.buildType || named.version !== facts.version) {
    throw new InputError(
      'tag',
      `${tag} names a ${named.buildType} ${named.version} release but ${options.sha256File} is for ${facts.appliance} ${facts.buildType} ${facts.version}`,
      `release ${facts.fileName} under ${releaseTag(facts.buildType, facts.version)}, or give the files of the build the tag names`,
    );
  }
  if (options.sbomFile) facts.sbom = await checkSbomAsset(options.sbomFile, facts);
  const title = releaseTitle(facts);
  const notes = renderReleaseNotes(facts);
  if (token === '') throw new InputError('GITHUB_TOKEN', 'is not set', 'export GITHUB_TOKEN (in a workflow: env GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}) with contents:write');
  const prerelease = options.prerelease === 'auto' ? semver.prerelease(facts.version) !== null : options.prerelease === 'true';
  const assets = [options.sha256File, ...(options.metadataFile ? [options.metadataFile] : []), ...(options.sbomFile ? [options.sbomFile] : []), ...options.assets];
  await checkReleaseAssets(assets);
  if (options.dryRun) return { tag, title, notes, facts };
  const release = await publishRelease({
    token,
    repository: options.repository,
    tag,
    name: title,
    body: notes,
    targetCommitish: options.target,
    prerelease,
    assets,
    apiUrl: options.apiUrl,
    log,
  });
  return { tag, title, notes, facts, release };
}

/** The SBOM to attach: a CycloneDX JSON file, and the very one the metadata lists when it lists one. */
async function checkSbomAsset(path: string, facts: ReleaseFacts): Promise<NonNullable<ReleaseFacts['sbom']>> {
  const file = await describeSbomFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new InputError('sbom-file', e.code ? `cannot read ${path} (${e.code})` : e.message, 'give the <name>.cdx.json published with the OVA');
  });
  if (facts.sbom && facts.sbom.sha256 !== file.sha256) {
    throw new InputError('sbom-file', `${path} has SHA-256 ${file.sha256}, but the metadata lists ${facts.sbom.name} with ${facts.sbom.sha256}`, 'give the SBOM published with this build');
  }
  return facts.sbom ?? { name: basename(path), format: file.format, components: file.components, sha256: file.sha256 };
}
