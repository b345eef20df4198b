/**
 * `uploadRelease()`: publishes an appliance and its companions to `gs://BUCKET/PREFIX` or `file:///DIR` —
 * verified, no-clobber, resumable — then updates the catalog, applies retention and refreshes the portal.
 * The upload-artifact action, `labforge upload` and `labforge pipeline` all call this.
 */
import * as glob from '@actions/glob';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Storage } from '@google-cloud/storage';
import type { ArtifactStore, StreamUploadRequest, UploadFileResult } from './artifact-store.js';
import { DirectoryStore } from './file-destination.js';
import { GcsStore } from './gcs-upload.js';
import semver from 'semver';
import { InputError, checkVersion, readString, type InputGetter } from './inputs.js';
import { printable } from './escape.js';
import { OvaError, readOvaProperties, readOvfDescriptor } from './ova-read.js';
import { publishPortal, type PortalResult } from './download-portal.js';
import { updateCatalog, withRelease, type CatalogRelease, type SbomReference } from './release-catalog.js';
import { LEGACY_APPLIANCE, artifactBaseName, checkApplianceName, isApplianceName, isBuildType, releasePrefix, releaseTag, type BuildType } from './release-names.js';
import { applyRetention, type RetentionResult } from './retention.js';
import type { RetryOptions } from './storage-retry.js';
import { TransferProgress, formatBytes } from './transfer-progress.js';
import { pinSource, sha256sumLine, type FileDigests } from './upload-hashing.js';
import type { DestinationOptions, UploadOptions } from './upload-options.js';
import { SBOM_SUFFIX, resolveSbomToPublish } from './sbom-publish.js';
import { DEFAULT_FIRST_BOOT } from './release-notes.js';
import { uploadWhilePacking, type OvaPacking } from './release-overlap.js';

export interface UploadReleaseOptions extends UploadOptions {
  /**
   * The appliance the release belongs to (a name such as `hedgehog-lab`, not a directory). Default: the OVA's
   * `appliance` property, else `hedgehog-lab`.
   */
  appliance?: string;
  /** Progress and notes (core.info in the action, stderr in the CLI). */
  log?: (line: string) => void;
  /** Time between progress lines. Default 5000 ms. */
  progressIntervalMs?: number;
  /** Workflow environment for the metadata companion (GITHUB_SHA, GITHUB_SERVER_URL, …). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Retry tuning (tests shorten delays). */
  retry?: Pick<RetryOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs'>;
  /** An existing Storage client (tests, benchmarks). */
  storage?: Storage;
  /**
   * The OVA as a packing in progress instead of a path (release-overlap.ts): its body is published while it is
   * packed. `path` then lists only other files (may be empty); the release's identity is the packing's.
   */
  packing?: OvaPacking;
}

export interface UploadedFile {
  name: string;
  key: string;
  uri: string;
  url: string;
  size: number;
  sha256: string;
  /** Base64 CRC32C as GCS shows it. */
  crc32c: string;
  bytesSent: number;
  bytesReused: number;
  seconds: number;
}

export interface UploadReleaseResult {
  /** The main artifact (the OVA). */
  uri: string;
  url: string;
  sha256: string;
  crc32c: string;
  size: number;
  /** `<name>.metadata.json` (release mode only, else ''). */
  metadataUri: string;
  /** `<name>.sha256` (release mode only, else ''). */
  sha256Uri: string;
  /** Local copy of the metadata companion, beside the artifact (release mode only, else ''). */
  metadataFile: string;
  /** The SBOM published beside the OVA (`<base>.cdx.json`; release mode with an SBOM only, else ''), and its local file. */
  sbomUri: string;
  sbomFile: string;
  files: UploadedFile[];
  /** Set in release mode (version and build type known). */
  release?: CatalogRelease;
  retention?: RetentionResult;
  portal?: PortalResult;
  destination: string;
}

/** The metadata companion, `<base>.metadata.json`. */
export interface ReleaseMetadata {
  name: string;
  /** The appliance's name (`hedgehog-lab`, `demo-lab`). */
  appliance: string;
  version: string;
  buildType: BuildType;
  tag: string;
  size: number;
  sha256: string;
  crc32c: string;
  buildDate: string;
  gitSha: string;
  workflowRunUrl: string;
  firstBoot: string;
  /** Why the build was made (e.g. the workshop's name), when given. */
  reason?: string;
  /** How an attendee logs in (from the appliance manifest), when given. */
  login?: string;
  /** A pre-warmed release warmed from a published standard OVA: that OVA's SHA-256 (and URI, when given). */
  builtFrom?: BuiltFrom;
  /** The appliance's SBOM published beside the OVA (`key` is its file name here), when the build produced one. */
  sbom?: SbomReference;
  publishedAt: string;
}

/** The origin of a pre-warmed release: the published standard OVA its disk was warmed from. */
export interface BuiltFrom {
  buildType: 'standard';
  /** SHA-256 (hex) of the standard OVA, as its `.ova.sha256` states. */
  sha256: string;
  /** Storage URI of the standard OVA, when known. */
  uri?: string;
}

/** What first boot does when the build gave no expectation from its appliance manifest (metadata and portal). */
export function expectedFirstBoot(buildType: BuildType): string {
  return DEFAULT_FIRST_BOOT[buildType];
}

/**
 * Reads the upload's `appliance` input: an appliance NAME (`hedgehog-lab`), validated like appliance.yml's
 * `name`; undefined when not given. A directory such as `packer/demo-lab` is an input error that says so.
 */
export function readUploadAppliance(get: InputGetter): string | undefined {
  const v = readString(get, 'appliance');
  if (v === '') return undefined;
  if (!isApplianceName(v) && /[/.]/.test(v)) {
    throw new InputError('appliance', `'${v.slice(0, 80)}' looks like a path, but upload-artifact takes the appliance's name`, 'give the name from appliance.yml, e.g. hedgehog-lab, or leave it empty to read it from the OVA');
  }
  return checkApplianceName(v, 'appliance');
}

/**
 * Refuses an OVA whose labforge properties cannot name a release (a `version` that is not a semantic
 * version, a `buildType` that is not one), and `version`/`build-type` inputs that contradict them: the
 * catalog, the storage path and the OVA must all say the same thing.
 */
export function checkOvaIdentity(ovaName: string, props: Record<string, string>, inputs: { version?: string | undefined; buildType?: BuildType | undefined }): void {
  const own = props.version;
  if (own !== undefined && semver.valid(own) === null) {
    throw new InputError('path', `${printable(ovaName)} says its version is '${printable(own, 80)}' (OVF property version), which is not a semantic version`, 'repack the image with labforge pack-ova --version MAJOR.MINOR.PATCH');
  }
  const ownType = props.buildType;
  if (ownType !== undefined && !isBuildType(ownType)) {
    throw new InputError('path', `${printable(ovaName)} says its build type is '${printable(ownType, 80)}' (OVF property buildType), which is not standard or prewarmed`, 'repack the image with labforge pack-ova --build-type standard|prewarmed');
  }
  if (inputs.version !== undefined && own !== undefined && inputs.version !== own) {
    throw new InputError('version', `'${inputs.version}' contradicts ${printable(ovaName)}, whose OVF property version is '${own}'`, 'leave version empty to publish the OVA as the version it was packed as, or repack it with the version you mean');
  }
  if (inputs.buildType !== undefined && ownType !== undefined && inputs.buildType !== ownType) {
    throw new InputError('build-type', `'${inputs.buildType}' contradicts ${printable(ovaName)}, whose OVF property buildType is '${ownType}'`, 'leave build-type empty to publish the OVA as the build it is, or repack it with the build type you mean');
  }
}

/** The input error for a file that an upload expected to be an OVA. */
function notAnOva(path: string, e: unknown): InputError {
  const message = (e as Error).message ?? String(e);
  const why = e instanceof OvaError ? message.replace(`${path}: `, '').replace(`${path} `, '') : message;
  return new InputError('path', `${printable(path)} is not an OVA (${printable(why, 200)})`, 'give the .ova that labforge pack-ova made, or set allow-non-ova to publish another kind of file');
}

/** Opens the store for a destination. */
export function openStore(opts: DestinationOptions & { retry?: UploadReleaseOptions['retry']; storage?: Storage }): ArtifactStore {
  if (opts.destination.kind === 'file') return new DirectoryStore({ dir: opts.destination.dir });
  return new GcsStore({
    location: opts.destination.location,
    parallelism: opts.parallelism,
    partSize: opts.chunkSizeMib * 1024 * 1024,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.retry ? { retry: opts.retry } : {}),
    ...(opts.storage ? { storage: opts.storage } : {}),
  });
}

/** Expands the `path` input (files and globs) into regular files. */
export async function resolveUploadFiles(patterns: string[]): Promise<string[]> {
  const found = new Set<string>();
  const plain = patterns.filter((p) => !/[*?[\]{}!]/.test(p));
  const globs = patterns.filter((p) => !plain.includes(p));
  for (const p of plain) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new InputError('path', `${p} does not exist`, 'check the path of the OVA (relative paths start at the working directory)');
    if (!s.isFile()) throw new InputError('path', `${p} is not a regular file`, 'give files or a glob such as output/*.ova');
    found.add(resolve(p));
  }
  if (globs.length > 0) {
    const globber = await glob.create(globs.join('\n'), { matchDirectories: false, implicitDescendants: false });
    for (const f of await globber.glob()) if ((await stat(f)).isFile()) found.add(resolve(f));
  }
  if (found.size === 0) throw new InputError('path', `nothing matches ${patterns.map((p) => `'${p}'`).join(', ')}`, 'check the path of the OVA (relative paths start at the working directory)');
  const names = new Map<string, string>();
  for (const f of found) {
    const prior = names.get(basename(f));
    if (prior) throw new InputError('path', `two files are named ${basename(f)} (${prior}, ${f})`, 'publish files with distinct names');
    names.set(basename(f), f);
  }
  return [...found].sort();
}

/** The main artifact: the largest .ova, else the largest file. */
function pickPrimary(files: { path: string; size: number }[]): string {
  const ovas = files.filter((f) => f.path.endsWith('.ova'));
  const pool = ovas.length > 0 ? ovas : files;
  return pool.reduce((a, b) => (b.size > a.size ? b : a)).path;
}

function workflowRunUrl(env: NodeJS.ProcessEnv): string {
  if (!env.GITHUB_REPOSITORY || !env.GITHUB_RUN_ID) return '';
  return `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
}

/**
 * Publishes the files matched by `options.path`. With a version and build type (given, or read from the
 * OVA's labforge properties) it is a release of an appliance (`options.appliance`, else the OVA's
 * `appliance` property, else `hedgehog-lab`): files go under `releases/v<version>/<build-type>/`, the
 * `.sha256` and `.metadata.json` companions are published, the catalog is updated, retention applied and
 * (with `portal`) the portal regenerated. Without them the files are published as-is under the prefix.
 * The storage directory is shared by every appliance at that version; file names differ by the appliance.
 */
export async function uploadRelease(options: UploadReleaseOptions): Promise<UploadReleaseResult> {
  const log = options.log ?? (() => {});
  const env = options.env ?? process.env;
  if (options.appliance !== undefined) checkApplianceName(options.appliance, 'appliance');
  const packing = options.packing;
  const paths = packing && options.path.length === 0 ? [] : await resolveUploadFiles(options.path);
  // Pin every file now: the bytes published must be the bytes of the file as it is at this moment.
  const sized = await Promise.all(
    paths.map(async (path) => {
      const source = await pinSource(path);
      return { path, source, size: source.size };
    }),
  );
  for (const f of sized) {
    if (f.size === 0) throw new InputError('path', `${printable(f.path)} is empty (0 bytes)`, 'give the finished OVA; an empty file is never a release');
  }
  const primary = packing ? resolve(packing.out) : pickPrimary(sized);
  const primaryName = basename(primary);
  const primaryBase = primaryName.endsWith('.ova') ? primaryName.slice(0, -4) : primaryName;
  const companionNames = new Set([`${primaryName}.sha256`, `${primaryBase}.metadata.json`, `${primaryBase}${SBOM_SUFFIX}`]);
  // Every file must be an OVA (a tar whose first member is the .ovf descriptor), unless allow-non-ova says otherwise.
  let ovaProps: Record<string, string> = packing ? { ...packing.properties } : {};
  if (!options.allowNonOva) {
    for (const { path } of sized) {
      if (path === primary && packing) continue;
      if (path !== primary && companionNames.has(basename(path))) continue;
      if (path === primary) ovaProps = await readOvaProperties(path).catch((e: unknown) => Promise.reject(notAnOva(path, e)));
      else await readOvfDescriptor(path).catch((e: unknown) => Promise.reject(notAnOva(path, e)));
    }
  } else if (primary.endsWith('.ova') && !packing) {
    ovaProps = await readOvaProperties(primary).catch(() => ({}));
  }

  // Release identity: inputs first, else the OVA's own labforge properties — which must be valid and must not contradict the inputs.
  let version = options.version;
  let buildType = options.buildType;
  checkOvaIdentity(primaryName, ovaProps, { version, buildType });
  if (version === undefined && buildType === undefined && ovaProps.version && ovaProps.buildType && isBuildType(ovaProps.buildType)) {
    version = ovaProps.version;
    buildType = ovaProps.buildType;
    log(`release: v${version} ${buildType}, from the labforge properties of ${primaryName}`);
  }
  if (version !== undefined) version = checkVersion(version, 'version');
  const fromOva = ovaProps.appliance && isApplianceName(ovaProps.appliance) ? ovaProps.appliance : undefined;
  const appliance = options.appliance ?? fromOva ?? LEGACY_APPLIANCE;
  if (options.appliance !== undefined && fromOva !== undefined && fromOva !== options.appliance) {
    log(`note: ${primaryName} says it is a build of ${fromOva}, but the appliance input says ${options.appliance}; publishing it as ${options.appliance}`);
  }
  const isRelease = version !== undefined && buildType !== undefined;
  if (options.sourceSha256 !== undefined && (!isRelease || buildType !== 'prewarmed')) {
    throw new InputError('source-sha256', isRelease ? `is set, but ${basename(primary)} is a ${buildType} release` : 'needs a release (version and build-type prewarmed)', 'only a pre-warmed release is built from a standard OVA; leave source-sha256 empty otherwise');
  }
  if (!isRelease && (options.retentionKeep > 0 || options.portal)) {
    throw new InputError(options.retentionKeep > 0 ? 'retention-keep' : 'portal', 'needs a release (version and build-type)', 'set version and build-type, or publish an OVA that carries the labforge properties');
  }
  const dir = isRelease ? releasePrefix(buildType!, version!) : '';
  const metadataName = isRelease ? `${primaryName.endsWith('.ova') ? primaryName.slice(0, -4) : primaryName}.metadata.json` : '';
  const sumName = `${primaryName}.sha256`;
  if (isRelease && primaryName.endsWith('.ova') && primaryName !== `${artifactBaseName(appliance, buildType!, version!)}.ova`) {
    log(`note: ${primaryName} does not follow the ${artifactBaseName(appliance, buildType!, version!)}.ova naming; publishing it under its own name`);
  }

  // The SBOM is checked (CycloneDX JSON, its facts pinned) before anything is uploaded.
  const sbom = isRelease ? await resolveSbomToPublish(options.sbom, primary, paths) : undefined;
  if (!isRelease && typeof options.sbom === 'string') throw new InputError('sbom', 'needs a release (version and build-type)', 'set version and build-type, or publish an OVA that carries the labforge properties');
  const sbomName = `${primaryBase}${SBOM_SUFFIX}`;

  const store = openStore(options);
  log(`publishing ${paths.length + (packing ? 1 : 0)} file(s)${packing ? `, ${primaryName} while it is packed,` : ''} to ${store.root}/${dir} (${options.destination.kind === 'gcs' ? `${options.parallelism} parallel parts of ${options.chunkSizeMib} MiB` : 'verified copy'})`);

  // The primary first; a user-supplied companion with a name we generate is checked, not uploaded.
  const order = [primary, ...paths.filter((p) => p !== primary)];
  const results: { path: string; result: UploadFileResult }[] = [];
  let primaryDigests: FileDigests | undefined;
  for (const path of order) {
    const name = basename(path);
    if (isRelease && (name === sumName || name === metadataName || (sbom && path === sbom.path))) continue;
    const request: StreamUploadRequest = {
      key: `${dir}${name}`,
      overwrite: options.overwrite,
      contentType: name.endsWith('.ova') ? 'application/x-virtualbox-ova' : 'application/octet-stream',
      metadata: isRelease ? { labforgeAppliance: appliance, labforgeVersion: version!, labforgeBuildType: buildType! } : {},
      log,
    };
    if (packing && path === primary) {
      const result = await uploadWhilePacking(store, packing, request);
      log(`upload ${name}: published while packing, ${formatBytes(result.bytesSent)} sent${result.bytesReused > 0 ? `, ${formatBytes(result.bytesReused)} already verified from an earlier run` : ''}, done in ${result.seconds.toFixed(1)} s`);
      results.push({ path, result });
      primaryDigests = result.digests;
      continue;
    }
    const { size, source } = sized.find((s) => s.path === path)!;
    const progress = new TransferProgress({ label: `upload ${name}`, totalBytes: size, log, ...(options.progressIntervalMs !== undefined ? { intervalMs: options.progressIntervalMs } : {}) });
    const result = await store.uploadFile({ ...request, localPath: path, source, onBytes: (n) => progress.add(n) });
    progress.finish(result.bytesReused > 0 ? `(${formatBytes(result.bytesReused)} already verified from an earlier run)` : '');
    results.push({ path, result });
    if (path === primary) primaryDigests = result.digests;
  }
  const main = results[0]!.result;
  const d = primaryDigests!;
  // The SBOM beside the OVA, verified like the OVA (and against the bytes checked above): before the catalog lists the release.
  if (sbom) {
    const result = await store.uploadFile({ localPath: sbom.path, source: sbom.source, key: `${dir}${sbomName}`, overwrite: options.overwrite, contentType: 'application/vnd.cyclonedx+json', metadata: { labforgeAppliance: appliance, labforgeVersion: version!, labforgeBuildType: buildType! }, onBytes: () => undefined, log });
    if (result.digests.sha256 !== sbom.facts.sha256) throw new Error(`${sbom.path} changed while it was published (SHA-256 ${result.digests.sha256}, checked as ${sbom.facts.sha256}); rebuild the SBOM and publish again`);
    log(`SBOM: ${result.uri} (${sbom.facts.format}, ${sbom.facts.components} components)`);
    results.push({ path: sbom.path, result });
  }

  // A .sha256 the build produced must agree with what was uploaded.
  const userSum = paths.find((p) => basename(p) === sumName);
  if (isRelease && userSum) {
    const hex = (await readFile(userSum, 'utf8')).trim().split(/\s+/)[0]?.toLowerCase();
    if (hex !== d.sha256) throw new Error(`${userSum} says ${hex} but ${primaryName} hashes to ${d.sha256}; the OVA changed after it was packed — rebuild or repack it`);
  }

  const files: UploadedFile[] = [];
  const urlFor = async (key: string): Promise<string> => {
    if (options.makePublic && store.makePublic) await store.makePublic(key);
    if (options.signedUrlHours > 0 && store.signedUrl) return store.signedUrl(key, options.signedUrlHours);
    return store.url(key);
  };
  for (const { path, result } of results) {
    files.push({
      name: basename(path),
      key: result.key,
      uri: result.uri,
      url: await urlFor(result.key),
      size: result.digests.size,
      sha256: result.digests.sha256,
      crc32c: result.digests.crc32cBase64,
      bytesSent: result.bytesSent,
      bytesReused: result.bytesReused,
      seconds: result.seconds,
    });
  }
  const out: UploadReleaseResult = {
    uri: main.uri,
    url: files[0]!.url,
    sha256: d.sha256,
    crc32c: d.crc32cBase64,
    size: d.size,
    metadataUri: '',
    sha256Uri: '',
    metadataFile: '',
    sbomUri: '',
    sbomFile: '',
    files,
    destination: store.root,
  };
  if (!isRelease) return out;

  // Companions, then the catalog: a release is listed only when all of it is there.
  const noClobber = options.overwrite ? {} : { ifGeneration: '0' };
  const publishedAt = new Date().toISOString();
  const metadata: ReleaseMetadata = {
    name: primaryName,
    appliance,
    version: version!,
    buildType: buildType!,
    tag: releaseTag(buildType!, version!),
    size: d.size,
    sha256: d.sha256,
    crc32c: d.crc32cBase64,
    buildDate: options.buildDate ?? ovaProps.buildDate ?? publishedAt,
    gitSha: options.gitSha ?? ovaProps.gitSha ?? env.GITHUB_SHA ?? '',
    workflowRunUrl: workflowRunUrl(env),
    firstBoot: options.firstBoot ?? expectedFirstBoot(buildType!),
    ...(options.reason ? { reason: options.reason } : {}),
    ...(options.login ? { login: options.login } : {}),
    ...(options.sourceSha256 ? { builtFrom: { buildType: 'standard' as const, sha256: options.sourceSha256, ...(options.sourceUri ? { uri: options.sourceUri } : {}) } } : {}),
    ...(sbom ? { sbom: { key: sbomName, ...sbom.facts } } : {}),
    publishedAt,
  };
  const sumKey = `${dir}${sumName}`;
  const metaKey = `${dir}${metadataName}`;
  await store.writeSmall(sumKey, Buffer.from(sha256sumLine(d.sha256, primaryName)), { contentType: 'text/plain; charset=utf-8', ...noClobber });
  await store.writeSmall(metaKey, Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`), { contentType: 'application/json', ...noClobber });
  if (options.makePublic && store.makePublic) {
    await store.makePublic(sumKey);
    await store.makePublic(metaKey);
  }
  out.sha256Uri = store.uri(sumKey);
  out.metadataUri = store.uri(metaKey);
  // A local copy beside the artifact, for steps that attach it (a GitHub release) without reading the bucket.
  out.metadataFile = join(dirname(primary), metadataName);
  await writeFile(out.metadataFile, `${JSON.stringify(metadata, null, 2)}\n`);

  const release: CatalogRelease = {
    appliance,
    version: version!,
    buildType: buildType!,
    tag: metadata.tag,
    name: primaryName,
    key: main.key,
    uri: main.uri,
    url: store.url(main.key),
    size: d.size,
    sha256: d.sha256,
    crc32c: d.crc32cBase64,
    sha256Key: sumKey,
    metadataKey: metaKey,
    files: [...results.slice(1).map((r) => r.result.key), sumKey, metaKey],
    buildDate: metadata.buildDate,
    gitSha: metadata.gitSha,
    workflowRunUrl: metadata.workflowRunUrl,
    firstBoot: metadata.firstBoot,
    ...(sbom ? { sbom: { key: `${dir}${sbomName}`, ...sbom.facts } } : {}),
    publishedAt,
  };
  if (sbom) {
    out.sbomUri = store.uri(`${dir}${sbomName}`);
    out.sbomFile = sbom.path;
  }
  await updateCatalog(store, withRelease(release), { log });
  out.release = release;
  log(`catalog: ${store.uri('index.json')} lists ${appliance} v${version} ${buildType}`);

  if (options.retentionKeep > 0) {
    out.retention = await applyRetention(store, { appliance, buildType: buildType!, keep: options.retentionKeep, protect: { version: version! }, dryRun: options.retentionDryRun, log });
  }
  if (options.portal) {
    out.portal = await publishPortal(store, { ...(options.signedUrlHours > 0 ? { signedUrlHours: options.signedUrlHours } : {}), log });
  }
  return out;
}

/** Step outputs of the upload (kebab-case strings). */
export function uploadOutputs(r: UploadReleaseResult): Record<string, string> {
  return {
    uri: r.uri,
    url: r.url,
    appliance: r.release?.appliance ?? '',
    sha256: r.sha256,
    crc32c: r.crc32c,
    size: String(r.size),
    'metadata-uri': r.metadataUri,
    'sha256-uri': r.sha256Uri,
    'metadata-file': r.metadataFile,
    sbom: r.sbomUri,
    'sbom-file': r.sbomFile,
    files: JSON.stringify(r.files.map((f) => ({ name: f.name, uri: f.uri, url: f.url, size: f.size, sha256: f.sha256, crc32c: f.crc32c }))),
    'portal-uri': r.portal?.htmlUri ?? '',
    'retention-deleted': JSON.stringify(r.retention?.deleted.map((x) => x.version) ?? []),
  };
}
