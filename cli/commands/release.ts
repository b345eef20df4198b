import type { Command } from '../command.js';
import { publishBuildRelease, readBuildReleaseOptions } from '../../actions/lib/build-release.js';

export const releaseCommand: Command = {
  name: 'release',
  summary: 'Create or update the GitHub release of a build (notes + .sha256 and metadata attached); prints JSON.',
  flags: {
    'sha256-file': { type: 'string', description: 'the <name>.ova.sha256 file (required; attached)' },
    'metadata-file': { type: 'string', description: 'the <name>.metadata.json file (attached)' },
    'sbom-file': { type: 'string', description: 'the <name>.cdx.json SBOM (attached; must be the one the metadata lists)' },
    tag: { type: 'string', description: 'release tag', default: 'the tag in $GITHUB_REF, else vX.Y.Z[-prewarmed] of the build' },
    repository: { type: 'string', description: 'owner/name', default: '$GITHUB_REPOSITORY' },
    size: { type: 'string', description: 'size of the OVA in bytes', default: 'from the metadata' },
    'download-url': { type: 'string', description: 'public or signed URL of the OVA (upload-artifact output url)' },
    'url-expires-hours': { type: 'string', description: 'hours a signed download URL stays valid (said in the notes)' },
    'portal-url': { type: 'string', description: 'URL of the download portal' },
    'first-boot': { type: 'string', description: 'expected first-boot time in words', default: 'from the metadata, else per build type' },
    reason: { type: 'string', description: 'why this build was made (shown in the notes)' },
    assets: { type: 'string', multiple: true, description: 'another file to attach (repeatable)' },
    target: { type: 'string', description: 'commit the tag is created from if missing', default: '$GITHUB_SHA' },
    prerelease: { type: 'string', description: 'auto, true or false (auto: the version has a -pre part)', default: 'auto' },
    'api-url': { type: 'string', description: 'GitHub REST API base URL', default: '$GITHUB_API_URL or https://api.github.com' },
    'attestation-repo': { type: 'string', description: 'owner/name whose workflow attested the OVA (actions/attest-build-provenance): the notes show gh attestation verify' },
    'dry-run': { type: 'boolean', description: 'make every check of a real run (files, tag, repository, token set, assets), print the notes; call no API' },
  },
  details: [
    'The token is read from the environment only (GITHUB_TOKEN, else GH_TOKEN), never from a flag,',
    'so that it stays out of process listings and shell history. It needs contents:write.',
    '',
    'Example (in the release workflow, after upload-artifact):',
    '  GITHUB_TOKEN=... labforge release --sha256-file out/hedgehog-lab-standard-1.4.0.ova.sha256 \\',
    '    --metadata-file out/hedgehog-lab-standard-1.4.0.metadata.json --download-url "$URL"',
    '',
    'Exit codes: 0 published (or dry run), 1 the GitHub API refused (the message says why and what to do), 2 bad input.',
  ].join('\n'),
  run: async ({ get, log, print }) => {
    const options = readBuildReleaseOptions(get);
    const token = process.env.GITHUB_TOKEN || process.env.GH_TOKEN || '';
    const result = await publishBuildRelease(options, token, log);
    if (options.dryRun) {
      print(JSON.stringify({ tag: result.tag, title: result.title, notes: result.notes }, null, 2));
      return 0;
    }
    const r = result.release!;
    log(`release ${r.tag} ${r.action}: ${r.htmlUrl}`);
    print(JSON.stringify({ tag: r.tag, id: r.id, action: r.action, url: r.htmlUrl, assets: r.assets }, null, 2));
    return 0;
  },
};
