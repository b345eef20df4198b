import type { Command } from '../command.js';
import { fetchPublishedStandard, fetchStandardOutputs, readFetchStandardOptions, writeGithubOutputs } from '../../actions/lib/standard-source.js';
import { untilTerminated } from '../../actions/lib/termination.js';

export const fetchStandardCommand: Command = {
  name: 'fetch-standard',
  summary: 'Fetch the published standard OVA of a version (gs:// or file://), verify it and convert its disk to a writable qcow2, the base of a pre-warmed build; prints JSON.',
  usage: '--destination gs://BUCKET/PREFIX|file:///DIR --appliance DIR --version V --out DIR [--github-output]',
  flags: {
    destination: { type: 'string', description: 'where releases are published: gs://BUCKET/PREFIX or file:///DIR' },
    endpoint: { type: 'string', description: 'GCS JSON-API endpoint for an emulator (or set STORAGE_EMULATOR_HOST)' },
    appliance: { type: 'string', description: "appliance directory holding appliance.yml (its name is read from it), or the appliance's name" },
    version: { type: 'string', description: 'semantic version of the standard release to start from' },
    out: { type: 'string', description: 'directory for <appliance>-standard-<version>.qcow2 (created only when the release is found)' },
    'github-output': { type: 'boolean', description: 'also write found, image, sha256 and uri to $GITHUB_OUTPUT' },
  },
  githubOutputs: ['found', 'image', 'sha256', 'uri'],
  details: [
    'Looks for <prefix>/releases/v<version>/standard/<appliance>-standard-<version>.ova. When it is there: streams it (never',
    'whole in memory), checks its OVF properties (appliance, build type standard, version), verifies it against its published',
    '.ova.sha256 (and the catalog) and every entry against the OVA\'s manifest, then converts the disk with qemu-img convert -O qcow2.',
    'Only the qcow2 stays; a tampered, truncated or mislabelled OVA fails and leaves nothing behind.',
    '',
    'Prints {"found": true|false, "image": …, "sha256": …, "uri": …} (image, sha256 and uri are "" when not found).',
    'With --github-output the same four are written to $GITHUB_OUTPUT as step outputs (found is "true" or "false");',
    'GITHUB_OUTPUT alone does not write anything, so a local run inside a job never touches the step\'s outputs by surprise.',
    'Credentials for gs://: Application Default Credentials (google-github-actions/auth before this step).',
    'Exit codes: 0 found or not found (see "found"), 1 the published standard OVA cannot be used, 2 bad input.',
  ].join('\n'),
  run: async ({ get, log, print }) => {
    const options = await readFetchStandardOptions(get);
    const result = await untilTerminated((signal) => fetchPublishedStandard({ ...options, log, signal }), () => new Error('cancelled'));
    const outputs = fetchStandardOutputs(result);
    if (options.githubOutput) await writeGithubOutputs(process.env.GITHUB_OUTPUT!, outputs);
    print(JSON.stringify({ found: result.found, image: outputs.image, sha256: outputs.sha256, uri: outputs.uri }, null, 2));
    return 0;
  },
};
