/**
 * The inputs of upload-artifact / `labforge upload` / `labforge portal`, validated in one place.
 * Credentials are never an input: the Google client uses Application Default Credentials.
 */
import { isAbsolute } from 'node:path';
import { fileUriProblem, parseFileUri } from './file-destination.js';
import { gcsPrefixProblem, parseGcsUri, type GcsLocation } from './gcs-upload.js';
import { InputError, checkName, checkOutputDirectory, readBool, readChoice, readInt, readList, readName, readRequired, readString, readVersion, type InputGetter } from './inputs.js';
import { printable } from './escape.js';
import { BUILD_TYPES, type BuildType } from './release-names.js';

export type Destination = { kind: 'gcs'; uri: string; location: GcsLocation } | { kind: 'file'; uri: string; dir: string };

export interface DestinationOptions {
  destination: Destination;
  /** GCS JSON-API endpoint for emulators (STORAGE_EMULATOR_HOST works too). */
  endpoint?: string;
  parallelism: number;
  chunkSizeMib: number;
}

export interface LinkOptions {
  makePublic: boolean;
  /** 0: no signed URLs. */
  signedUrlHours: number;
}

export interface UploadOptions extends DestinationOptions, LinkOptions {
  /** File paths or glob patterns (one per line or comma-separated). */
  path: string[];
  version?: string;
  buildType?: BuildType;
  overwrite: boolean;
  /** 0: keep every release. */
  retentionKeep: number;
  retentionDryRun: boolean;
  portal: boolean;
  /**
   * Publish files that are not OVAs (a tar whose first member is an .ovf descriptor). Off by default: an
   * upload refuses anything else, since a release is an OVA. Default false.
   */
  allowNonOva?: boolean;
  /** Overrides for the metadata companion (otherwise from the OVA's properties and the workflow environment). */
  buildDate?: string;
  gitSha?: string;
  firstBoot?: string;
  reason?: string;
  /** How an attendee logs in (the appliance manifest's login.how), recorded in the metadata. */
  login?: string;
  /** A pre-warmed build's origin: the SHA-256 (hex) of the published standard OVA it was warmed from. */
  sourceSha256?: string;
  /** The storage URI of that standard OVA (only with sourceSha256). */
  sourceUri?: string;
  /**
   * The appliance's SBOM (CycloneDX JSON) to publish beside the OVA as `<base>.cdx.json`: a path, `false` for
   * none; default (undefined) the `<base>.cdx.json` beside the OVA when there is one.
   */
  sbom?: string | false;
}

const SECRET_LOOKING = /BEGIN [A-Z ]*PRIVATE KEY|"private_key"|"type"\s*:\s*"service_account"/;

/** Reads and checks a destination: `gs://BUCKET[/PREFIX]` or `file:///DIR`. */
export function parseDestination(raw: string, input = 'destination'): Destination {
  if (SECRET_LOOKING.test(raw)) {
    throw new InputError(input, 'looks like key material', 'never pass credentials as an input: authenticate with google-github-actions/auth (Workload Identity Federation) before this step');
  }
  if (raw.startsWith('gs://')) {
    const prefixProblem = gcsPrefixProblem(raw);
    if (prefixProblem) throw new InputError(input, `'${printable(raw, 200)}' ${prefixProblem}`, 'give a plain prefix such as gs://my-bucket/labs (no //, . or .. segments)');
    const location = parseGcsUri(raw);
    if (!location) throw new InputError(input, `'${printable(raw, 200)}' is not a valid gs:// URI`, 'use gs://BUCKET or gs://BUCKET/PREFIX with a valid bucket name (3-222 characters: a-z, 0-9, . _ -)');
    return { kind: 'gcs', uri: raw.replace(/\/+$/, ''), location };
  }
  if (raw.startsWith('file://')) {
    const problem = fileUriProblem(raw);
    if (problem) throw new InputError(input, `'${printable(raw, 200)}' ${problem}`, 'use a plain absolute directory such as file:///srv/labs or file:///media/usb/labs');
    const dir = parseFileUri(raw)!;
    // A file where the directory should be is refused now, in one line, not as ENOTDIR after the work started.
    checkOutputDirectory(dir, input);
    return { kind: 'file', uri: raw, dir };
  }
  if (isAbsolute(raw)) throw new InputError(input, `'${printable(raw, 200)}' has no scheme`, `write file://${printable(raw, 200)} for a directory, or gs://BUCKET/PREFIX for Cloud Storage`);
  throw new InputError(input, `'${printable(raw, 200)}' is neither gs://BUCKET/PREFIX nor file:///DIR`, 'give a Cloud Storage prefix (gs://my-bucket/labs) or a directory (file:///srv/labs)');
}

/** Destination, endpoint and transfer tuning (shared by upload and portal). */
export function readDestinationOptions(get: InputGetter): DestinationOptions {
  const destination = parseDestination(readRequired(get, 'destination', 'set destination to gs://BUCKET/PREFIX or file:///DIR'));
  const endpoint = checkEndpoint(readString(get, 'endpoint'));
  if (endpoint && destination.kind === 'file') throw new InputError('endpoint', 'is set but the destination is a directory', 'drop endpoint, or use a gs:// destination');
  return {
    destination,
    ...(endpoint ? { endpoint } : {}),
    parallelism: readInt(get, 'parallelism', 8, { min: 1, max: 64 }),
    chunkSizeMib: readInt(get, 'chunk-size-mib', 16, { min: 1, max: 1024 }),
  };
}

const ENDPOINT_FIX = 'give the emulator or API base URL, e.g. http://127.0.0.1:4443';

/**
 * Checks the `endpoint` input ('' passes): one line, parsed by the WHATWG URL parser, http or https, a host,
 * and an explicit port (when given) from 1 to 65535 — so a bad endpoint is refused before any work starts.
 */
export function checkEndpoint(raw: string, input = 'endpoint'): string {
  if (raw === '') return raw;
  checkName(raw, input, 'the endpoint URL');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // The parser refuses a port above 65535 as it refuses any other malformed URL: name the port when it is that.
    const port = /^https?:\/\/[^/?#]*:(\d+)(?:[/?#]|$)/.exec(raw)?.[1];
    if (port !== undefined && Number(port) > 65535) throw new InputError(input, `'${printable(raw, 200)}' has port ${port}, which is not a port`, `use a port from 1 to 65535; ${ENDPOINT_FIX}`);
    throw new InputError(input, `'${printable(raw, 200)}' is not a URL`, ENDPOINT_FIX);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(input, `'${printable(raw, 200)}' is not an http(s) URL`, ENDPOINT_FIX);
  if (url.hostname === '') throw new InputError(input, `'${printable(raw, 200)}' has no host`, ENDPOINT_FIX);
  if (url.port === '0') throw new InputError(input, `'${printable(raw, 200)}' has port 0, which is not a port`, `use a port from 1 to 65535; ${ENDPOINT_FIX}`);
  return raw;
}

/** make-public / signed-url-hours. */
export function readLinkOptions(get: InputGetter, destination: Destination): LinkOptions {
  const makePublic = readBool(get, 'make-public', false);
  const signedUrlHours = readInt(get, 'signed-url-hours', 0, { min: 0, max: 168 });
  if (makePublic && signedUrlHours > 0) throw new InputError('signed-url-hours', 'is set together with make-public', 'choose one: public objects, or signed URLs that expire');
  if (destination.kind === 'file' && (makePublic || signedUrlHours > 0)) {
    throw new InputError(makePublic ? 'make-public' : 'signed-url-hours', 'only applies to gs:// destinations', 'drop it for a file:// destination (share the directory instead)');
  }
  return { makePublic, signedUrlHours };
}

/** All inputs of the upload. */
export function readUploadOptions(get: InputGetter): UploadOptions {
  const path = readList(get, 'path');
  if (path.length === 0) throw new InputError('path', 'is required but empty', 'give the OVA to publish (a path or a glob such as output/*.ova)');
  const dest = readDestinationOptions(get);
  const version = readVersion(get, 'version');
  const rawType = readString(get, 'build-type');
  const buildType = rawType === '' ? undefined : readChoice(get, 'build-type', BUILD_TYPES, 'standard');
  if ((version === undefined) !== (buildType === undefined)) {
    throw new InputError(version === undefined ? 'version' : 'build-type', 'is missing while the other of version/build-type is set', 'give both (files then go under releases/v<version>/<build-type>/) or neither');
  }
  const retentionRaw = readString(get, 'retention-keep');
  const retentionKeep = retentionRaw === '' || retentionRaw === 'all' ? 0 : readInt(get, 'retention-keep', 0, { min: 1, max: 10_000 });
  const opts: UploadOptions = {
    path,
    ...dest,
    ...readLinkOptions(get, dest.destination),
    overwrite: readBool(get, 'overwrite', false),
    retentionKeep,
    retentionDryRun: readBool(get, 'retention-dry-run', false),
    portal: readBool(get, 'portal', false),
    allowNonOva: readBool(get, 'allow-non-ova', false),
  };
  if (version !== undefined) opts.version = version;
  if (buildType !== undefined) opts.buildType = buildType;
  const buildDate = readString(get, 'build-date');
  if (buildDate) {
    if (Number.isNaN(Date.parse(buildDate))) throw new InputError('build-date', `'${printable(buildDate, 80)}' is not a date`, 'use ISO 8601, e.g. 2024-05-01T12:00:00Z');
    opts.buildDate = new Date(buildDate).toISOString();
  }
  const gitSha = readString(get, 'git-sha');
  if (gitSha) {
    if (!/^[0-9a-f]{7,64}$/i.test(gitSha)) throw new InputError('git-sha', `'${printable(gitSha, 80)}' is not a git commit id`, 'give the hex commit id, e.g. ${{ github.sha }}');
    opts.gitSha = gitSha.toLowerCase();
  }
  const firstBoot = readName(get, 'first-boot', '', 'the first-boot expectation');
  if (firstBoot) opts.firstBoot = firstBoot;
  const reason = readName(get, 'reason', '', 'the reason');
  if (reason) {
    if (reason.length > 200) throw new InputError('reason', `is ${reason.length} characters long`, 'keep it to a short phrase such as the workshop name (200 characters at most)');
    opts.reason = reason;
  }
  const login = readName(get, 'login', '', 'the login instructions');
  if (login) {
    if (login.length > 1000) throw new InputError('login', `is ${login.length} characters long`, 'keep it to one paragraph (1000 characters at most)');
    opts.login = login;
  }
  Object.assign(opts, readSourceOptions(get, buildType));
  const sbom = readString(get, 'sbom');
  if (sbom === 'none') opts.sbom = false;
  else if (sbom !== '') {
    if (!sbom.endsWith('.json')) throw new InputError('sbom', `'${printable(sbom, 200)}' is not a .json file`, 'give the CycloneDX JSON SBOM (<appliance>-<build-type>-<version>.cdx.json) of the build, none, or leave it empty');
    opts.sbom = sbom;
  }
  return opts;
}

/**
 * `source-sha256` / `source-uri`: the standard OVA a pre-warmed release was warmed from. Empty is fine for any
 * build (build.yml passes an empty value when Packer built the standard image); a value must be 64 hex digits
 * and is refused for a build type other than prewarmed. The URI is optional and needs the SHA-256.
 */
export function readSourceOptions(get: InputGetter, buildType: BuildType | undefined): Pick<UploadOptions, 'sourceSha256' | 'sourceUri'> {
  const sha = readString(get, 'source-sha256');
  const uri = readString(get, 'source-uri');
  if (uri && !sha) throw new InputError('source-uri', 'is set without source-sha256', 'give the SHA-256 of the standard OVA too, or leave source-uri empty');
  if (!sha) return {};
  if (!/^[0-9a-fA-F]{64}$/.test(sha)) throw new InputError('source-sha256', `'${printable(sha, 80)}' is not a SHA-256`, 'give the 64 hex digits of the standard OVA (fetch-standard\'s sha256 output), or leave it empty');
  if (buildType !== undefined && buildType !== 'prewarmed') throw new InputError('source-sha256', `is set for a ${buildType} build`, 'only a pre-warmed release is built from a standard OVA; leave it empty for standard builds');
  if (uri && (!/^(gs|file):\/\/\S+$/.test(uri) || uri.length > 2048)) throw new InputError('source-uri', `'${printable(uri, 80)}' is not a gs:// or file:// URI`, "give fetch-standard's uri output, or leave it empty");
  return { sourceSha256: sha.toLowerCase(), ...(uri ? { sourceUri: uri } : {}) };
}

export interface PortalCommandOptions extends DestinationOptions, LinkOptions {
  title?: string;
}

/** Inputs of `labforge portal`. */
export function readPortalOptions(get: InputGetter): PortalCommandOptions {
  const dest = readDestinationOptions(get);
  const links = readLinkOptions(get, dest.destination);
  if (links.makePublic) throw new InputError('make-public', 'does not apply to the portal', 'objects are made public when they are uploaded; use signed-url-hours for expiring links');
  const title = readName(get, 'title', '', 'the portal title');
  return { ...dest, ...links, ...(title ? { title } : {}) };
}
