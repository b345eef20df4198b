/**
 * upload-artifact with `image`: packs the disk into the OVA at `path` and publishes it while it is packed
 * (issue 16), as `labforge pipeline`'s pack step does. uploadRelease() gets the packing in place of a
 * finished file (release-overlap.ts): the body of the archive goes up as it is compressed, the head and tail
 * last; the object is composed, verified and published no-clobber — a packing that fails or is cancelled
 * publishes nothing at the release name. The OVA and its `.sha256` stay at `path` for later steps.
 */
import { packOva, type PackOvaOptions, type PackOvaResult } from './ova-pack.js';
import { uploadRelease, type UploadReleaseOptions, type UploadReleaseResult } from './release-upload.js';
import { toolOutput } from './tool-output.js';
import type { UploadPackOptions } from './upload-pack-options.js';

export interface PublishWhilePackingOptions {
  /** The upload's options (`path` is ignored: the packing's OVA is the release's file). */
  upload: UploadReleaseOptions;
  pack: UploadPackOptions;
  /** Cancels the packing (and with it the upload: nothing is published). */
  signal?: AbortSignal;
  /** Progress lines of the packing and the upload. */
  log?: (line: string) => void;
  /** Workflow environment (GITHUB_SHA). Default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface PublishWhilePackingResult {
  publish: UploadReleaseResult;
  /** The packed OVA at `path` (its `.sha256` beside it) and the pack's timings. */
  ova: PackOvaResult;
}

/** The commit the OVA and its metadata record: the input, else $GITHUB_SHA, else the checkout's HEAD, else ''. */
async function buildCommit(given: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  if (given) return given;
  if (env.GITHUB_SHA && /^[0-9a-f]{40}$/.test(env.GITHUB_SHA)) return env.GITHUB_SHA;
  const head = await toolOutput('git', ['rev-parse', 'HEAD']).catch(() => undefined);
  return head?.exitCode === 0 && /^[0-9a-f]{40}$/.test(head.stdout.trim()) ? head.stdout.trim() : '';
}

/**
 * Packs `pack.image` into `pack.out` and publishes it while it is packed; resolves when the release is
 * published (OVA, .sha256, metadata, SBOM, catalog, retention, portal — as an upload by path). The OVA's
 * build date and commit are the metadata's too.
 */
export async function publishWhilePacking(o: PublishWhilePackingOptions): Promise<PublishWhilePackingResult> {
  const { upload, pack } = o;
  const version = upload.version;
  const buildType = upload.buildType;
  if (version === undefined || buildType === undefined) throw new Error('publishWhilePacking needs the release identity (version and build type)');
  // One build date and one commit for the OVA's ProductSection and the metadata companion.
  const buildDate = new Date(upload.buildDate ?? Date.now());
  buildDate.setUTCMilliseconds(0);
  const gitSha = await buildCommit(upload.gitSha, o.env ?? process.env);
  const options: PackOvaOptions = {
    image: pack.image,
    out: pack.out,
    appliance: pack.appliance.name,
    buildType,
    version,
    os: pack.appliance.os,
    cpus: pack.resources.cpus,
    memoryMiB: pack.resources.memoryMiB,
    gitSha,
    buildDate,
    ...(o.log ? { log: o.log } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  let ova: PackOvaResult | undefined;
  const publish = await uploadRelease({
    ...upload,
    path: [],
    appliance: pack.appliance.name,
    buildDate: buildDate.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...(gitSha ? { gitSha } : {}),
    ...(o.log ? { log: o.log } : {}),
    packing: {
      out: pack.out,
      properties: { appliance: pack.appliance.name, version, buildType },
      run: async (sink) => {
        ova = await packOva({ ...options, partSink: sink });
      },
    },
  });
  if (!ova) throw new Error(`${pack.out} was published but its packing reported no result`);
  return { publish, ova };
}

/** The job summary's rows about the packing: where the OVA is, its size, and how long packing took. */
export function packSummaryRows(r: PublishWhilePackingResult, pack: UploadPackOptions): [string, string][] {
  const t = r.ova.timings;
  return [
    ['packed', `${r.ova.ova} (${(r.ova.size / 1024 / 1024).toFixed(1)} MiB) and ${r.ova.sha256File}, from ${pack.image}`],
    ['published while packed', `pack ${t.totalSeconds.toFixed(1)} s (disk ${t.convertSeconds.toFixed(1)} s, hash ${t.hashSeconds.toFixed(1)} s); the body was uploaded as it was compressed`],
    ['appliance', `${pack.appliance.name}, profile ${pack.resources.name}: ${pack.resources.cpus} vCPU, ${pack.resources.memoryMiB} MiB (${pack.appliance.os.description})`],
  ];
}
