/**
 * The `build` phase of `labforge pipeline`: the appliance's standard image, as build.yml obtains it.
 *
 * A pre-warmed build whose destination already holds the standard release of the same version warms that
 * published OVA (fetched, verified and converted back to qcow2 by standard-source.ts): the same software by
 * construction, and the OS install is not paid twice. Otherwise — a standard build, no such release, or
 * `fromStandard: 'never'` — packer-build builds it (not packed: the pipeline packs after the warm).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Appliance, ResourceChoice, readResourceOverrides } from './appliance.js';
import { runPackerBuild, terminalReporter } from './packer-build.js';
import { fetchPublishedStandard } from './standard-source.js';
import type { Destination } from './upload-options.js';

export const FROM_STANDARD = ['auto', 'never'] as const;
/** `auto`: a pre-warmed build starts from the published standard OVA when there is one; `never`: always Packer. */
export type FromStandard = (typeof FROM_STANDARD)[number];

export interface StandardImageRequest {
  /** The appliance directory (appliance.yml) and its loaded manifest and chosen resources. */
  applianceDir: string;
  appliance: Appliance;
  resources: ResourceChoice;
  overrides: ReturnType<typeof readResourceOverrides>;
  version: string;
  /** True for a pre-warmed build (the only kind that may start from the published standard). */
  warm: boolean;
  fromStandard: FromStandard;
  /** Where releases are published (the pipeline's `file://` bucket). */
  destination: Destination;
  accelerator: 'kvm' | 'tcg';
  consolePassword?: string;
  /** USER:TOKEN for the lab's registry: exported to Packer as PKR_VAR_registry_auth (packer-build's registryCredential). */
  registryCredential?: string;
  /** The pipeline's work directory for this build. */
  work: string;
  log: (line: string) => void;
  signal: AbortSignal;
}

export interface StandardImage {
  /** The writable qcow2 the warm (or the pack) starts from. */
  image: string;
  /** Set when it came from the published standard OVA: that OVA's SHA-256 and URI. */
  builtFrom?: { sha256: string; uri: string };
  /** What the phase table shows. */
  summary: string;
  /** The SBOM packer-build made from the image's package inventory (Packer builds only). */
  sbom?: string;
}

/** Obtains the standard image: from the published standard release when allowed and present, else from Packer. */
export async function obtainStandardImage(r: StandardImageRequest): Promise<StandardImage> {
  if (r.warm && r.fromStandard !== 'never') {
    const fetched = await fetchPublishedStandard({ destination: r.destination, appliance: r.appliance.name, version: r.version, outDir: join(r.work, 'standard'), signal: r.signal, log: r.log });
    if (fetched.found) {
      return {
        image: fetched.image,
        builtFrom: { sha256: fetched.ovaSha256, uri: fetched.uri },
        summary: `from published standard ${fetched.uri} (sha256 ${fetched.ovaSha256.slice(0, 12)}…) → ${fetched.image}`,
      };
    }
    r.log('no published standard release of this version at the destination: building it with Packer');
  }
  const packerOut = join(r.work, 'packer');
  await rm(packerOut, { recursive: true, force: true });
  const result = await runPackerBuild(
    {
      template: '',
      appliance: { dir: r.applianceDir, overrides: r.overrides, ...(r.consolePassword ? { consolePassword: r.consolePassword } : {}) },
      buildType: 'standard',
      version: r.version,
      vars: {},
      varFiles: [],
      only: [],
      accelerator: r.accelerator,
      ...(r.registryCredential ? { registryCredential: r.registryCredential } : {}),
      timeoutMinutes: r.appliance.build.timeoutMinutes,
      onError: 'cleanup',
      pluginCache: false,
      package: 'none',
      // Packer's download cache and port locks go with the build: a local run leaves nothing behind.
      cacheDir: 'temporary',
      outputDir: packerOut,
      expectedImageGiB: r.appliance.build.expectedImageGiB,
      vmMemoryMiB: r.resources.memoryMiB,
      watchdog: { afterSeconds: r.appliance.build.sshWatchdogSeconds, username: r.appliance.build.user },
    },
    { reporter: terminalReporter(r.log), signal: r.signal },
  );
  if (!result.image) throw new Error(`Packer finished without a disk image (log: ${result.buildLog})`);
  return { image: result.image, summary: result.image, ...(result.sbom ? { sbom: result.sbom.path } : {}) };
}
