/**
 * The facts a GitHub release of one appliance build states, and the Markdown notes made from them.
 *
 * The facts come from the files the upload publishes beside every OVA (see the design notes): the
 * `<name>.ova.sha256` file (`sha256sum -c` format, always present) and the `<name>.metadata.json` file
 * (appliance, version, build type, size, sha256, build date, git sha, run URL, expected first-boot time).
 * Where the metadata does not name the appliance, the file name (`<appliance>-<build-type>-<version>.ova`)
 * does; metadata written before releases carried their appliance is `hedgehog-lab`. Flags of
 * `labforge release` fill in or override what the metadata does not say (the download URL, the reason).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { powershellQuote, shellQuote } from './escape.js';
import { InputError } from './inputs.js';
import { LEGACY_APPLIANCE, isApplianceName, isBuildType, parseArtifactBaseName, type BuildType } from './release-names.js';

/** What a person needs to pick, download and verify one build. */
export interface ReleaseFacts {
  /** The appliance's name (`hedgehog-lab`, `demo-lab`). */
  appliance: string;
  buildType: BuildType;
  version: string;
  /** The OVA's file name, e.g. `hedgehog-lab-prewarmed-1.4.0.ova`. */
  fileName: string;
  sha256: string;
  /** Size of the OVA in bytes, when known. */
  size?: number;
  /** Where the OVA can be downloaded (public or signed URL). */
  downloadUrl?: string;
  /** Hours a signed download URL stays valid; unset for a public URL. */
  urlExpiresHours?: number;
  /** The download portal (index.html) that lists every release. */
  portalUrl?: string;
  /** How long the first boot takes until the lab is ready, in words ("under 5 minutes"). */
  firstBoot: string;
  /** Why this build was made (the on-demand workflow's `reason`). */
  reason?: string;
  /** How an attendee logs in (the appliance manifest's login.how, recorded in the metadata). */
  login?: string;
  buildDate?: string;
  gitSha?: string;
  /** The workflow run that built it. */
  runUrl?: string;
  /** A pre-warmed build warmed from a published standard OVA: that OVA's SHA-256 (metadata `builtFrom.sha256`). */
  builtFromSha256?: string;
  /** The appliance's SBOM published beside the OVA (metadata `sbom`), attached to the release. */
  sbom?: { name: string; format: string; components: number; sha256: string };
  /**
   * `owner/name` of the repository whose workflow attested the OVA's build provenance
   * (actions/attest-build-provenance), when it was attested: the notes then show `gh attestation verify`.
   */
  attestationRepo?: string;
}

/** First-boot time of each build type when the metadata does not state a measured one (docs/INSTALL.md). */
/**
 * What the notes and the metadata say when a build gave no first-boot expectation (the appliance manifest's
 * `first-boot`, with its basis, is what build.yml and the pipeline pass): what first boot does, and no time that
 * nobody measured.
 */
export const DEFAULT_FIRST_BOOT: Record<BuildType, string> = {
  standard: 'the lab is initialized on first boot (no time stated: this build gave no first-boot expectation from its appliance manifest)',
  prewarmed: 'the lab was initialized at build time; first boot only resumes it (no time stated: this build gave no first-boot expectation from its appliance manifest)',
};

/** Describes each build type in one line for the notes. */
const BUILD_TYPE_LINE: Record<BuildType, string> = {
  standard: 'standard: the lab is initialized on first boot (self-paced use)',
  prewarmed: 'pre-warmed: the lab was initialized at build time (workshops, fast first boot)',
};

export interface ReadReleaseFactsOptions {
  /** The `<name>.ova.sha256` file. Required: it names the file and its checksum. */
  sha256File: string;
  /** The `<name>.metadata.json` file, when there is one. */
  metadataFile?: string;
  /** Values given on the command line; they override the metadata. */
  overrides?: Partial<Pick<ReleaseFacts, 'size' | 'downloadUrl' | 'urlExpiresHours' | 'portalUrl' | 'firstBoot' | 'reason' | 'gitSha' | 'runUrl' | 'attestationRepo'>>;
}

/** Parses a `sha256sum` line: `<64 hex>  <file name>` (binary-mode `*name` accepted). */
export function parseSha256Line(text: string, source: string): { sha256: string; fileName: string } {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trim());
  if (!m) {
    throw new InputError('sha256-file', `${source} is not in sha256sum format (expected '<64 hex digits>  <file name>', found '${line.slice(0, 80)}')`, 'give the .ova.sha256 file written by labforge pack-ova or upload-artifact');
  }
  return { sha256: (m[1] ?? '').toLowerCase(), fileName: basename(m[2] ?? '') };
}

/** Reads `<appliance>-<build-type>-<version>.ova` back into its appliance, build type and version. */
export function parseArtifactFileName(fileName: string): { appliance: string; buildType: BuildType; version: string } | undefined {
  return fileName.endsWith('.ova') ? parseArtifactBaseName(fileName) : undefined;
}

/** Looks a key up in metadata regardless of its spelling (`buildType`, `build-type`, `build_type`). */
function metadataValue(meta: Record<string, unknown>, key: string): unknown {
  const want = key.replace(/[-_]/g, '').toLowerCase();
  for (const [k, v] of Object.entries(meta)) if (k.replace(/[-_]/g, '').toLowerCase() === want) return v;
  return undefined;
}

function metadataString(meta: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const key of keys) {
    const v = metadataValue(meta, key);
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  }
  return undefined;
}

async function readMetadata(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new InputError('metadata-file', `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the <name>.metadata.json file published with the OVA, or leave the flag out');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InputError('metadata-file', `${path} is not JSON`, 'give the <name>.metadata.json file published with the OVA');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InputError('metadata-file', `${path} holds JSON but not an object`, 'give the <name>.metadata.json file published with the OVA');
  }
  return parsed as Record<string, unknown>;
}

/**
 * Gathers the facts of one build from its `.sha256` file, its metadata file and the overrides.
 * The checksum file is the authority for the SHA-256; metadata that disagrees with it is an error.
 */
export async function readReleaseFacts(options: ReadReleaseFactsOptions): Promise<ReleaseFacts> {
  let shaText: string;
  try {
    shaText = await readFile(options.sha256File, 'utf8');
  } catch (e) {
    throw new InputError('sha256-file', `cannot read ${options.sha256File} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the .ova.sha256 file published with the OVA');
  }
  const { sha256, fileName } = parseSha256Line(shaText, options.sha256File);
  const meta = options.metadataFile ? await readMetadata(options.metadataFile) : {};
  const fromName = parseArtifactFileName(fileName);

  const typeWord = metadataString(meta, 'buildType') ?? fromName?.buildType;
  if (typeWord === undefined) {
    throw new InputError('sha256-file', `cannot tell the build type: ${fileName} is not named <appliance>-<build-type>-<version>.ova and no metadata file says it`, 'give --metadata-file, or the .sha256 file of a labforge OVA');
  }
  if (!isBuildType(typeWord)) {
    throw new InputError('metadata-file', `buildType is '${typeWord}', which is not a build type`, 'the metadata must say standard or prewarmed');
  }
  const version = metadataString(meta, 'version') ?? fromName?.version;
  if (version === undefined) {
    throw new InputError('metadata-file', `cannot tell the version of ${fileName}`, 'give the metadata file published with the OVA');
  }
  const appliance = metadataString(meta, 'appliance') ?? fromName?.appliance ?? LEGACY_APPLIANCE;
  if (!isApplianceName(appliance)) {
    throw new InputError('metadata-file', `appliance is '${appliance.slice(0, 80)}', which is not an appliance name`, 'the metadata must name the appliance as its appliance.yml does, e.g. hedgehog-lab');
  }
  if (fromName && fromName.appliance !== appliance) {
    throw new InputError('metadata-file', `it says appliance ${appliance}, but ${fileName} in ${options.sha256File} is a build of ${fromName.appliance}`, 'the two files belong to different appliances; give the pair published together');
  }
  const metaSha = metadataString(meta, 'sha256');
  if (metaSha !== undefined && metaSha.toLowerCase() !== sha256) {
    throw new InputError('metadata-file', `its sha256 ${metaSha} differs from ${sha256} in ${options.sha256File}`, 'the two files belong to different builds; give the pair published together');
  }
  const sizeRaw = metadataValue(meta, 'size');
  const size = typeof sizeRaw === 'number' ? sizeRaw : typeof sizeRaw === 'string' && /^\d+$/.test(sizeRaw) ? Number(sizeRaw) : undefined;
  const firstBootMinutes = metadataValue(meta, 'expectedFirstBootMinutes');
  const metaFirstBoot =
    typeof firstBootMinutes === 'number' ? `about ${firstBootMinutes} minutes` : metadataString(meta, 'expectedFirstBoot', 'firstBoot', 'expectedFirstBootTime');
  const o = options.overrides ?? {};
  const facts: ReleaseFacts = {
    appliance,
    buildType: typeWord,
    version,
    fileName,
    sha256,
    size: o.size ?? size,
    downloadUrl: o.downloadUrl ?? metadataString(meta, 'url', 'downloadUrl'),
    urlExpiresHours: o.urlExpiresHours,
    portalUrl: o.portalUrl,
    firstBoot: o.firstBoot ?? metaFirstBoot ?? DEFAULT_FIRST_BOOT[typeWord],
    reason: o.reason ?? metadataString(meta, 'reason'),
    login: metadataString(meta, 'login'),
    buildDate: metadataString(meta, 'buildDate'),
    gitSha: o.gitSha ?? metadataString(meta, 'gitSha'),
    runUrl: o.runUrl ?? metadataString(meta, 'workflowRunUrl', 'runUrl'),
    ...(o.attestationRepo ? { attestationRepo: o.attestationRepo } : {}),
  };
  const builtFrom = metadataValue(meta, 'builtFrom') as { sha256?: unknown } | undefined;
  if (typeof builtFrom?.sha256 === 'string' && /^[0-9a-fA-F]{64}$/.test(builtFrom.sha256)) facts.builtFromSha256 = builtFrom.sha256.toLowerCase();
  const sbom = metadataValue(meta, 'sbom') as { key?: unknown; format?: unknown; components?: unknown; sha256?: unknown } | undefined;
  if (typeof sbom?.key === 'string' && typeof sbom.format === 'string' && typeof sbom.components === 'number' && typeof sbom.sha256 === 'string' && /^[0-9a-f]{64}$/.test(sbom.sha256)) {
    facts.sbom = { name: sbom.key.split('/').pop()!, format: sbom.format, components: sbom.components, sha256: sbom.sha256 };
  }
  return facts;
}

/** `21.3 GiB (22 877 000 000 bytes)`. */
export function formatSize(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const exact = bytes.toLocaleString('en-US');
  return unit === 0 ? `${exact} bytes` : `${value.toFixed(1)} ${units[unit]} (${exact} bytes)`;
}

/** A Markdown table cell: no line breaks, no unescaped pipes. */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

/** The release's title: `hedgehog-lab 1.4.0 (pre-warmed)`. */
export function releaseTitle(facts: Pick<ReleaseFacts, 'appliance' | 'buildType' | 'version'>): string {
  return `${facts.appliance} ${facts.version} (${facts.buildType === 'prewarmed' ? 'pre-warmed' : 'standard'})`;
}

/**
 * Renders the release notes: what the build is, its size, SHA-256 and expected first boot, where to
 * download it (with a resume-friendly command) and how to verify it with the attached `.sha256` file.
 */
export function renderReleaseNotes(facts: ReleaseFacts): string {
  const rows: [string, string][] = [
    ['Appliance', `\`${facts.appliance}\``],
    ['Build type', `\`${facts.buildType}\` — ${BUILD_TYPE_LINE[facts.buildType]}`],
    ['Version', facts.version],
    ['File', `\`${facts.fileName}\``],
    ['Size', facts.size !== undefined ? formatSize(facts.size) : 'see the metadata file'],
    ['SHA-256', `\`${facts.sha256}\``],
    ['Expected first boot', facts.firstBoot],
  ];
  if (facts.buildDate) rows.push(['Built', facts.buildDate]);
  if (facts.gitSha) rows.push(['Source commit', `\`${facts.gitSha}\``]);
  if (facts.builtFromSha256) rows.push(['Built from', `the published standard OVA of this version, SHA-256 \`${facts.builtFromSha256}\``]);
  if (facts.runUrl) rows.push(['Build run', facts.runUrl]);
  if (facts.reason) rows.push(['Reason', facts.reason]);
  if (facts.login) rows.push(['How to log in', facts.login]);

  const lines = [
    `## ${releaseTitle(facts)}`,
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`),
    '',
    '### Download',
    '',
  ];
  if (facts.downloadUrl?.startsWith('file://')) {
    // A file:// destination (a shared mount): where the OVA is, not a link a browser would follow.
    lines.push(`- ${facts.fileName}: stored at \`${decodeURIComponent(new URL(facts.downloadUrl).pathname)}\` (a file:// destination; copy it from there).`);
  } else if (facts.downloadUrl) {
    const expiry = facts.urlExpiresHours !== undefined ? ` (signed link, valid for ${facts.urlExpiresHours} hours after publication; ask for a new one on the portal afterwards)` : '';
    lines.push(`- [${facts.fileName}](${facts.downloadUrl})${expiry}`);
  } else {
    lines.push(`- ${facts.fileName}: the download link is on the portal (the OVA is too large to attach to a release).`);
  }
  if (facts.portalUrl) lines.push(`- All releases and builds: ${facts.portalUrl}`);
  if (facts.sbom) lines.push(`- SBOM: \`${facts.sbom.name}\` (${facts.sbom.format}, ${facts.sbom.components} components: every package of the image with its version), attached below; SHA-256 \`${facts.sbom.sha256}\``);
  // Copy-paste commands: every file name and URL shell-quoted (a name is data, never shell syntax).
  const file = shellQuote(facts.fileName);
  const sumFile = shellQuote(`${facts.fileName}.sha256`);
  lines.push('', 'Resume-friendly download (re-run the same command after an interruption):', '', '```bash');
  lines.push(`curl -fL -C - -o ${file} ${facts.downloadUrl ? shellQuote(facts.downloadUrl) : "'<download URL>'"}`);
  lines.push('```', '', '### Verify', '', `Download \`${facts.fileName}.sha256\` from this release's assets next to the OVA, then:`, '', '```bash');
  lines.push(`sha256sum -c ${sumFile}            # Linux`);
  lines.push(`shasum -a 256 -c ${sumFile}        # macOS`);
  lines.push('```', '', 'Windows (PowerShell):', '', '```powershell', `(Get-FileHash -LiteralPath ${powershellQuote(facts.fileName)} -Algorithm SHA256).Hash`, '```', '', 'must equal the SHA-256 above.', '');
  lines.push(
    'With labforge (the checksum, the OVA\'s structure and every entry against its manifest, in one pass; prints the build type, version, build date and git SHA the OVA states):',
    '',
    '```bash',
    `labforge verify ${file}`,
    '```',
    '',
  );
  if (facts.attestationRepo) {
    lines.push(
      '### Provenance',
      '',
      `GitHub Actions attested this OVA's build provenance (which repository, workflow and commit built it; signed with Sigstore). Check it with the GitHub CLI:`,
      '',
      '```bash',
      `gh attestation verify ${file} --repo ${shellQuote(facts.attestationRepo)}`,
      '```',
      '',
    );
  }
  lines.push('See docs/INSTALL.md for importing the OVA and docs/FAQ.md for which build to choose.', '');
  return lines.join('\n');
}
