import type { Command, FlagSpec } from '../command.js';
import { readUploadAppliance, uploadOutputs, uploadRelease } from '../../actions/lib/release-upload.js';
import { readUploadOptions } from '../../actions/lib/upload-options.js';

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
  summary: 'Publish an OVA and its companions to gs:// or file:// (parallel, resumable, verified, no-clobber); prints the outputs as JSON.',
  usage: '--path FILE --destination gs://BUCKET/PREFIX|file:///DIR [flags]',
  flags: {
    path: { type: 'string', description: 'file or glob to publish (repeatable)', multiple: true },
    ...destinationFlags,
    appliance: { type: 'string', description: "the appliance's name (default: the OVA's appliance property, else hedgehog-lab)" },
    version: { type: 'string', description: 'semantic version (with --build-type: releases/v<version>/<build-type>/)' },
    'build-type': { type: 'string', description: 'standard or prewarmed' },
    overwrite: { type: 'boolean', description: 'replace an existing release' },
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
    'Credentials: Application Default Credentials (gcloud auth application-default login, or a workload identity).',
    'Running the same command again after an interruption resumes: verified parts are not sent again.',
    'A file that changes while it is being uploaded (truncated, appended to, rewritten, replaced) is not published: upload it again once it is complete.',
    'Exit codes: 0 published, 1 the upload failed (nothing half-published), 2 bad input.',
  ].join('\n'),
  run: async ({ get, log, print }) => {
    const options = readUploadOptions(get);
    const appliance = readUploadAppliance(get);
    const r = await uploadRelease({ ...options, ...(appliance ? { appliance } : {}), log });
    print(JSON.stringify(uploadOutputs(r), null, 2));
    return 0;
  },
};
