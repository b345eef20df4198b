/**
 * The GitHub release of a build, against a hand-written STAND-IN for the GitHub REST API
 * (test/support/github-api-standin.ts): the real API is not reachable from CI, so these tests prove
 * our client's logic (create, update on re-run, assets, error messages) against the documented shapes.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publishRelease, GitHubReleaseError } from '../../actions/lib/github-release.js';
import { publishBuildRelease, readBuildReleaseOptions } from '../../actions/lib/build-release.js';
import { inputsFrom } from '../../actions/lib/inputs.js';
import { closedPort } from '../support/closed-port.js';
import { GitHubApiStandIn } from '../support/github-api-standin.js';
import { runCli } from '../support/run-cli.js';

const REPO = 'octo-org/labforge';
const WRITE = 'ghs_write_token_for_the_standin_0123456789';
const READ = 'ghs_read_only_token_for_the_standin_012345';
const SHA = 'a'.repeat(64);

let api: GitHubApiStandIn;
let dir: string;
let shaFile: string;
let metaFile: string;

function writeBuildFiles(version: string, buildType: 'standard' | 'prewarmed', extra: Record<string, unknown> = {}): { sha: string; meta: string } {
  const name = `hedgehog-lab-${buildType}-${version}`;
  const sha = join(dir, `${name}.ova.sha256`);
  const meta = join(dir, `${name}.metadata.json`);
  writeFileSync(sha, `${SHA}  ${name}.ova\n`);
  writeFileSync(meta, JSON.stringify({ version, buildType, size: 22_877_000_000, sha256: SHA, buildDate: '2025-05-01T10:00:00Z', gitSha: 'abc1234', ...extra }, null, 2));
  return { sha, meta };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'labforge-release-'));
  ({ sha: shaFile, meta: metaFile } = writeBuildFiles('1.4.0', 'prewarmed'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeEach(async () => {
  api = new GitHubApiStandIn({ repositories: [REPO], tokens: { [WRITE]: 'write', [READ]: 'read' }, pageSize: 2 });
  await api.start();
});
afterEach(async () => {
  await api.stop();
});

function options(over: Record<string, string> = {}) {
  return readBuildReleaseOptions(
    inputsFrom({ 'sha256-file': shaFile, 'metadata-file': metaFile, 'download-url': 'https://storage.googleapis.com/b/releases/v1.4.0/prewarmed/hedgehog-lab-prewarmed-1.4.0.ova', ...over }),
    { GITHUB_REPOSITORY: REPO, GITHUB_API_URL: api.url, GITHUB_REF: 'refs/tags/v1.4.0-prewarmed', GITHUB_SHA: 'abc1234', GITHUB_RUN_ID: '42', GITHUB_SERVER_URL: 'https://github.example' },
  );
}

describe('publishing the release of a tag', () => {
  it('creates the release with notes, attaches the .sha256 and metadata files, and publishes it', async () => {
    const result = await publishBuildRelease(options(), WRITE);
    expect(result.release?.action).toBe('created');
    const releases = api.releasesOf(REPO);
    expect(releases).toHaveLength(1);
    const r = releases[0]!;
    expect(r.tag_name).toBe('v1.4.0-prewarmed');
    expect(r.draft).toBe(false);
    expect(r.prerelease).toBe(false);
    expect(r.target_commitish).toBe('abc1234');
    expect(r.name).toBe('hedgehog-lab 1.4.0 (pre-warmed)');
    expect(r.body).toContain('| Appliance | `hedgehog-lab` |');
    expect(r.body).toContain('`prewarmed`');
    expect(r.body).toContain('21.3 GiB (22,877,000,000 bytes)');
    expect(r.body).toContain(SHA);
    expect(r.body).toContain('[hedgehog-lab-prewarmed-1.4.0.ova](https://storage.googleapis.com/b/releases/v1.4.0/prewarmed/hedgehog-lab-prewarmed-1.4.0.ova)');
    expect(r.body).toContain('first boot only resumes it (no time stated');
    expect(r.body).toContain('https://github.example/octo-org/labforge/actions/runs/42');
    expect(r.assets.map((a) => a.name).sort()).toEqual(['hedgehog-lab-prewarmed-1.4.0.metadata.json', 'hedgehog-lab-prewarmed-1.4.0.ova.sha256']);
    expect(r.assets.find((a) => a.name.endsWith('.sha256'))?.content.toString()).toBe(`${SHA}  hedgehog-lab-prewarmed-1.4.0.ova\n`);
    // Created as a draft, published only after the assets were uploaded.
    const order = api.requests.filter((q) => q.method !== 'GET').map((q) => `${q.method} ${q.path.replace(/\d+/g, 'N')}`);
    expect(order).toEqual([
      'POST /repos/octo-org/labforge/releases',
      'POST /uploads/repos/octo-org/labforge/releases/N/assets',
      'POST /uploads/repos/octo-org/labforge/releases/N/assets',
      'PATCH /repos/octo-org/labforge/releases/N',
    ]);
  });

  it('updates the same release on a re-run instead of making a second one', async () => {
    await publishBuildRelease(options(), WRITE);
    const first = api.releasesOf(REPO)[0]!;
    const again = await publishBuildRelease(options({ reason: 'KubeCon workshop' }), WRITE);
    expect(again.release?.action).toBe('updated');
    expect(api.releasesOf(REPO)).toHaveLength(1);
    expect(api.releasesOf(REPO)[0]!.id).toBe(first.id);
    expect(api.releasesOf(REPO)[0]!.body).toContain('KubeCon workshop');
    expect(api.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/releases'))).toHaveLength(1);
    // The same files again: nothing is re-uploaded.
    expect(again.release?.assets.map((a) => a.action)).toEqual(['unchanged', 'unchanged']);
    expect(api.releasesOf(REPO)[0]!.assets).toHaveLength(2);
  });

  it('replaces an asset whose content changed, keeping one asset per name', async () => {
    await publishBuildRelease(options(), WRITE);
    const oldId = api.releasesOf(REPO)[0]!.assets.find((a) => a.name.endsWith('.metadata.json'))!.id;
    const other = join(dir, 'changed');
    rmSync(other, { recursive: true, force: true });
    mkdirSync(other);
    const meta = join(other, 'hedgehog-lab-prewarmed-1.4.0.metadata.json');
    writeFileSync(meta, JSON.stringify({ version: '1.4.0', buildType: 'prewarmed', size: 22_877_000_000, sha256: SHA, buildDate: '2025-05-02T10:00:00Z' }));
    const result = await publishBuildRelease(options({ 'metadata-file': meta }), WRITE);
    expect(result.release?.assets.map((a) => `${a.name}:${a.action}`)).toEqual([
      'hedgehog-lab-prewarmed-1.4.0.ova.sha256:unchanged',
      'hedgehog-lab-prewarmed-1.4.0.metadata.json:replaced',
    ]);
    const assets = api.releasesOf(REPO)[0]!.assets;
    expect(assets).toHaveLength(2);
    const now = assets.find((a) => a.name.endsWith('.metadata.json'))!;
    expect(now.id).not.toBe(oldId);
    expect(now.content.toString()).toContain('2025-05-02');
    expect(api.requests.filter((q) => q.method === 'DELETE')).toHaveLength(1);
  });

  it('finds and publishes a draft left behind by an interrupted run (drafts are only in the paginated list)', async () => {
    for (const t of ['v0.9.0', 'v1.0.0', 'v1.1.0']) api.seedRelease(REPO, { tag_name: t });
    const draft = api.seedRelease(REPO, { tag_name: 'v1.4.0-prewarmed', draft: true });
    api.seedRelease(REPO, { tag_name: 'v1.5.0' });
    api.seedRelease(REPO, { tag_name: 'v1.6.0' });
    const result = await publishBuildRelease(options(), WRITE);
    expect(result.release?.action).toBe('updated');
    expect(result.release?.id).toBe(draft.id);
    expect(api.releasesOf(REPO).filter((r) => r.tag_name === 'v1.4.0-prewarmed')).toHaveLength(1);
    expect(draft.draft).toBe(false);
    expect(draft.assets).toHaveLength(2);
  });

  it('marks a release of a -rc version as a prerelease', async () => {
    const files = writeBuildFiles('2.0.0-rc.1', 'standard');
    await publishBuildRelease({ ...options({ 'sha256-file': files.sha, 'metadata-file': files.meta }), tag: undefined }, WRITE);
    const r = api.releasesOf(REPO).find((x) => x.tag_name === 'v2.0.0-rc.1');
    expect(r?.prerelease).toBe(true);
    expect(r?.body).toContain('the lab is initialized on first boot (no time stated');
  });
});

describe('failing clearly', () => {
  const call = (token: string, repository = REPO) =>
    publishRelease({ token, repository, tag: 'v1.4.0', name: 'n', body: 'b', assets: [shaFile], apiUrl: api.url });

  it('says the token was rejected on 401, and how to pass one', async () => {
    const err = (await call('ghs_not_a_valid_token').catch((e: unknown) => e)) as GitHubReleaseError;
    expect(err).toBeInstanceOf(GitHubReleaseError);
    expect(err.status).toBe(401);
    expect(err.message).toContain('GitHub rejected the token (401 Bad credentials)');
    expect(err.message).toContain('GITHUB_TOKEN');
    expect(err.message).not.toContain('ghs_not_a_valid_token');
  });

  it('names the missing permission on 403 and writes nothing', async () => {
    const err = (await call(READ).catch((e: unknown) => e)) as GitHubReleaseError;
    expect(err.status).toBe(403);
    expect(err.message).toContain('403 Resource not accessible by integration');
    expect(err.message).toContain('permissions: contents: write');
    expect(err.message).toContain('creating the release v1.4.0');
    expect(api.releasesOf(REPO)).toHaveLength(0);
  });

  it('names the repository on 404', async () => {
    const err = (await call(WRITE, 'octo-org/no-such-repo').catch((e: unknown) => e)) as GitHubReleaseError;
    expect(err.status).toBe(404);
    expect(err.message).toContain(`octo-org/no-such-repo was not found at ${api.url} (404 Not Found)`);
    expect(err.message).toContain('check the repository name');
  });

  it('refuses a missing asset before touching the API', async () => {
    const err = (await publishRelease({ token: WRITE, repository: REPO, tag: 'v1.4.0', name: 'n', body: 'b', assets: [join(dir, 'nope.sha256')], apiUrl: api.url }).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('cannot read the asset');
    expect(err.message).toContain('ENOENT');
    expect(api.requests).toHaveLength(0);
  });

  it('refuses a tag that names another build than the files', async () => {
    const err = (await publishBuildRelease(options({ tag: 'v1.4.0' }), WRITE).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(
      'tag: v1.4.0 names a standard 1.4.0 release but ' +
        shaFile +
        ' is for hedgehog-lab prewarmed 1.4.0 (release hedgehog-lab-prewarmed-1.4.0.ova under v1.4.0-prewarmed, or give the files of the build the tag names)',
    );
    expect(api.requests).toHaveLength(0);
  });
});

describe('labforge release (the built CLI)', () => {
  const env = () => ({ GITHUB_API_URL: api.url, GITHUB_REPOSITORY: REPO, GITHUB_REF: 'refs/tags/v1.4.0-prewarmed' });

  it('publishes, prints JSON, and never prints the token', async () => {
    const run = await runCli(['release', '--sha256-file', shaFile, '--metadata-file', metaFile, '--download-url', 'https://example.test/x.ova', '--url-expires-hours', '24'], {
      env: { ...env(), GITHUB_TOKEN: WRITE },
    });
    expect(run.stderr).toContain('release v1.4.0-prewarmed created');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as { action: string; tag: string; assets: unknown[] };
    expect(out).toMatchObject({ action: 'created', tag: 'v1.4.0-prewarmed' });
    expect(out.assets).toHaveLength(2);
    expect(api.releasesOf(REPO)[0]!.body).toContain('signed link, valid for 24 hours');
    expect(run.stdout + run.stderr).not.toContain(WRITE);
  });

  it('exits 1 with the cause on a rejected token', async () => {
    const run = await runCli(['release', '--sha256-file', shaFile], { env: { ...env(), GITHUB_TOKEN: 'ghs_wrong' } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('labforge release: GitHub rejected the token (401 Bad credentials)');
    expect(run.stderr).not.toContain('ghs_wrong');
  });

  it('exits 2 naming the input when no token or no checksum file is given', async () => {
    const noToken = await runCli(['release', '--sha256-file', shaFile], { env: env() });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('labforge release: GITHUB_TOKEN: is not set');
    const noFile = await runCli(['release'], { env: { ...env(), GITHUB_TOKEN: WRITE } });
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('sha256-file: is required but empty');
    expect(api.requests).toHaveLength(0);
  });

  it('prints the notes without calling the API in a dry run', async () => {
    const run = await runCli(['release', '--sha256-file', shaFile, '--metadata-file', metaFile, '--dry-run'], { env: { ...env(), GITHUB_TOKEN: WRITE } });
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as { tag: string; notes: string };
    expect(out.tag).toBe('v1.4.0-prewarmed');
    expect(out.notes).toContain('sha256sum -c hedgehog-lab-prewarmed-1.4.0.ova.sha256');
    expect(api.requests).toHaveLength(0);
  });

  it('makes every check of a real run in a dry run: repository, token, assets (issue 15)', async () => {
    const dry = (args: string[], e: Record<string, string>) => runCli(['release', '--sha256-file', shaFile, '--metadata-file', metaFile, '--dry-run', ...args], { env: e });
    const noRepo = await dry([], { GITHUB_TOKEN: WRITE, GITHUB_REF: 'refs/tags/v1.4.0-prewarmed' });
    expect(noRepo.code).toBe(2);
    expect(noRepo.stderr).toContain('repository: is empty and GITHUB_REPOSITORY is not set');
    const badRepo = await dry(['--repository', 'not-a-repo'], { GITHUB_TOKEN: WRITE });
    expect(badRepo.code).toBe(2);
    expect(badRepo.stderr).toContain("repository: 'not-a-repo' is not owner/name");
    const noToken = await dry([], env());
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('GITHUB_TOKEN: is not set');
    const missingAsset = await dry(['--assets', join(dir, 'nope.txt')], { ...env(), GITHUB_TOKEN: WRITE });
    expect(missingAsset.code).toBe(1);
    expect(missingAsset.stderr).toMatch(/cannot read the asset .*nope\.txt \(ENOENT\)/);
    const deviceAsset = await dry(['--assets', '/dev/zero'], { ...env(), GITHUB_TOKEN: WRITE });
    expect(deviceAsset.code).toBe(1);
    expect(deviceAsset.stderr).toContain('the asset /dev/zero is not a regular file');
    const twice = await dry(['--assets', shaFile], { ...env(), GITHUB_TOKEN: WRITE });
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('two assets are named hedgehog-lab-prewarmed-1.4.0.ova.sha256');
    expect(api.requests).toHaveLength(0);
  });
});

describe('a GitHub API that cannot be reached', () => {
  it('says "cannot reach <url>" for a refused connection, not "answered 500" (issue 15)', async () => {
    const closed = await closedPort();
    const apiUrl = `http://127.0.0.1:${closed}`;
    const err = (await publishRelease({ token: WRITE, repository: REPO, tag: 'v1.4.0', name: 'n', body: 'b', assets: [shaFile], apiUrl }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(GitHubReleaseError);
    expect(err.message).toMatch(new RegExp(`^cannot reach the GitHub API at ${apiUrl} while reading the repository ${REPO}: .*ECONNREFUSED.* \\(check GITHUB_API_URL and the network\\)$`));
    expect(err.message).not.toMatch(/answered 500/);
  });
});
