import type { Command, FlagSpec } from '../command.js';
import { readUploadAppliance, uploadOutputs, uploadRelease } from '../../actions/lib/release-upload.js';
import { packSummaryRows, publishWhilePacking } from '../../actions/lib/upload-pack.js';
import { readUploadInputs } from '../../actions/lib/upload-pack-options.js';
import { untilTerminated } from '../../actions/lib/termination.js';

/** Flags shared by `labforge upload` and `labforge portal` (same names as the action inputs). */
export const destinationFlags: Record<string, FlagSpec> = {
  destination: { type: 'string', description: 'gs://BUCKET/PREFIX or file:///DIR' },
  endpoint: { type: 'string', description: 'GCS JSON-API endpoint for an emulator (or set STORAGE_EMULATOR_HOST)' },
  parallelism: { type: 'string', description: 'parts uploaded at the same time', default: '8' },
  'chunk-size-mib': { type: 'string', description: 'part size in MiB', default: '16' },
  'signed-url-hours': { type: 'string', description: 'use V4 signed URLs valid this many hours', default: '0' },
};

export const uploadCommand: Command = {
  name: 'upload-artifact',
  aliases: ['upload'],
  summary: 'Publish an OVA and its companions to gs:// or file:// (parallel, resumable, verified, no-clobber), or with --image pack the OVA and publish it while it is packed; prints the outputs as JSON.',
  usage: '--path FILE --destination gs://BUCKET/PREFIX|file:///DIR [--image DISK --appliance-dir DIR --version X.Y.Z --build-type TYPE] [flags]',
  flags: {
    path: { type: 'string', description: 'file or glob to publish (repeatable); with --image: the one OVA file to write (ends in .ova, in an existing directory)', multiple: true },
    image: { type: 'string', description: 'a disk image (qcow2, or anything qemu-img reads) to pack into the OVA at --path and publish while it is packed; needs --appliance-dir, --version and --build-type' },
    'appliance-dir': { type: 'string', description: 'with --image: the appliance directory holding appliance.yml (e.g. packer/demo-lab); the OVF declares its OS and resources' },
    profile: { type: 'string', description: "with --image: the resource profile of appliance.yml the OVF declares (as pack-ova --profile)", default: "the manifest's default profile" },
    ...destinationFlags,
    appliance: { type: 'string', description: "the appliance's name (default: the OVA's appliance property, else hedgehog-lab; with --image: --appliance-dir's)" },
    version: { type: 'string', description: 'semantic version (with --build-type: releases/v<version>/<build-type>/)' },
    'build-type': { type: 'string', description: 'standard or prewarmed' },
    overwrite: { type: 'boolean', description: 'replace an existing release (with --image, also an existing file at --path)' },
    'retention-keep': { type: 'string', description: 'keep the newest N releases of this build type', default: 'all' },
    'retention-dry-run': { type: 'boolean', description: 'only list what retention would delete' },
    'make-public': { type: 'boolean', description: 'make the published objects public' },
    portal: { type: 'boolean', description: 'regenerate index.html and DOWNLOADS.md' },
    'allow-non-ova': { type: 'boolean', description: 'publish files that are not OVAs (by default every file must be an OVA: a tar whose first member is the .ovf)' },
    'build-date': { type: 'string', description: 'build date for the metadata (ISO 8601)' },
    'git-sha': { type: 'string', description: 'commit of the build for the metadata' },
    'first-boot': { type: 'string', description: 'expected first-boot time for the metadata' },
    reason: { type: 'string', description: "why the build was made (e.g. the workshop's name), recorded in the metadata" },
    'source-sha256': { type: 'string', description: 'pre-warmed only: SHA-256 of the published standard OVA it was warmed from (metadata builtFrom)' },
    'source-uri': { type: 'string', description: 'with --source-sha256: the URI of that standard OVA' },
    sbom: { type: 'string', description: 'the CycloneDX JSON SBOM to publish beside the OVA as <base>.cdx.json (none: no SBOM)', default: '<base>.cdx.json beside the OVA, when there is one' },
  },
  details: [
    'Example: labforge upload-artifact --image output/demo-lab.qcow2 --appliance-dir packer/demo-lab --path out/demo-lab-standard-1.0.0.ova --destination file:///srv/labs --version 1.0.0 --build-type standard',
    'With --image the OVA is packed as pack-ova --appliance packs it and published while it is packed: the body goes up as it is',
    'compressed, the head and tail last, then it is composed, verified and published no-clobber; the OVA and its .sha256 stay at --path.',
    'Every flag is checked before anything is packed or sent. SIGINT/SIGTERM stop the packing; a failed or cancelled packing publishes nothing.',
    'Credentials: Application Default Credentials (gcloud auth application-default login, or a workload identity).',
    'Running the same command again after an interruption resumes: verified parts are not sent again.',
    'A file that changes while it is being uploaded (truncated, appended to, rewritten, replaced) is not published: upload it again once it is complete.',
    'Exit codes: 0 published, 1 the upload failed (nothing half-published), 2 bad input.',
  ].join('\n'),
  run: async ({ get, log, print }) => {
    const appliance = readUploadAppliance(get);
    const { upload: options, pack } = await readUploadInputs(get, appliance);
    if (!pack) {
      const r = await uploadRelease({ ...options, ...(appliance ? { appliance } : {}), log });
      print(JSON.stringify(uploadOutputs(r), null, 2));
      return 0;
    }
    // With --image: pack the OVA at --path and publish it while it is packed. SIGINT/SIGTERM stop the packing
    // (and the upload, which then publishes nothing).
    const packed = await untilTerminated((signal) => publishWhilePacking({ upload: options, pack, signal, log }));
    for (const [what, text] of packSummaryRows(packed, pack)) log(`${what}: ${text}`);
    print(JSON.stringify(uploadOutputs(packed.publish), null, 2));
    return 0;
  },
};
