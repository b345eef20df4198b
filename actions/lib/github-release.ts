/**
 * Creates or updates the GitHub release of a tag and attaches small files to it, with @actions/github.
 *
 * Re-running is safe: the release of a tag is found (published or draft) and updated, never duplicated,
 * and an asset of the same name is replaced (or kept when its SHA-256 digest already matches). A new
 * release is created as a draft, its assets are uploaded, and only then is it published, so nobody sees
 * a release without its checksum file. The API base URL is configurable (`GITHUB_API_URL`, GitHub
 * Enterprise Server, a test stand-in); uploads go to the `upload_url` the API returns.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { getOctokit } from '@actions/github';

/** A release operation the GitHub API refused or that could not be carried out; `status` is the HTTP status. */
export class GitHubReleaseError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'GitHubReleaseError';
  }
}

export interface PublishReleaseOptions {
  /** A token allowed to write releases (`contents: write`). Never logged. */
  token: string;
  /** `owner/name`. */
  repository: string;
  /** The tag the release belongs to, e.g. `v1.4.0-prewarmed`. */
  tag: string;
  /** The release title. */
  name: string;
  /** The release notes (Markdown). */
  body: string;
  /** Commit or branch the tag is created from when it does not exist yet. */
  targetCommitish?: string;
  prerelease?: boolean;
  /** Files to attach (their base name is the asset name). GitHub limits an asset to 2 GiB. */
  assets?: string[];
  /** REST API base URL; default `GITHUB_API_URL` or `https://api.github.com`. */
  apiUrl?: string;
  /** Progress lines for the person watching. */
  log?: (line: string) => void;
}

export interface PublishedAsset {
  name: string;
  size: number;
  url: string;
  /** `uploaded` (new), `replaced` (an older asset of that name was deleted first), `unchanged` (same digest). */
  action: 'uploaded' | 'replaced' | 'unchanged';
}

export interface PublishedRelease {
  id: number;
  tag: string;
  htmlUrl: string;
  /** `created` when this call made the release, `updated` when it existed. */
  action: 'created' | 'updated';
  assets: PublishedAsset[];
}

/** GitHub's limit for one release asset. */
const MAX_ASSET_BYTES = 2 * 1024 ** 3;

interface ApiRelease {
  id: number;
  tag_name: string;
  html_url: string;
  upload_url: string;
  draft: boolean;
}

interface ApiAsset {
  id: number;
  name: string;
  size: number;
  browser_download_url: string;
  digest?: string | null;
}

interface RequestFailure {
  status: number;
  message: string;
  response?: { data?: unknown; headers?: Record<string, string | undefined> };
}

function isRequestFailure(e: unknown): e is RequestFailure {
  return typeof e === 'object' && e !== null && typeof (e as { status?: unknown }).status === 'number';
}

/** The API's own message (`Bad credentials`, `Resource not accessible by integration`, …). */
function apiMessage(e: RequestFailure): string {
  const data = e.response?.data;
  if (data && typeof data === 'object' && typeof (data as { message?: unknown }).message === 'string') return (data as { message: string }).message;
  return e.message;
}

/** The system error code (ECONNREFUSED, ENOTFOUND, …) somewhere in an error's cause chain, if any. */
function networkCode(e: unknown): string | undefined {
  for (let c = e as { code?: unknown; cause?: unknown } | undefined, depth = 0; c && depth < 5; c = c.cause as typeof c, depth++) {
    if (typeof c.code === 'string' && /^E[A-Z]+$/.test(c.code)) return c.code;
  }
  return undefined;
}

/** Turns an API failure into an error that says what was being done, what GitHub answered, and what to do. */
export function explainApiFailure(e: unknown, doing: string, repository: string, apiUrl: string): Error {
  // Octokit reports a connection that never got an answer (refused, reset, DNS) as status 500 without a
  // response: that is not the API answering 500.
  if (!isRequestFailure(e) || e.response === undefined) {
    const said = (e as Error)?.message ?? String(e);
    const code = networkCode(e);
    const cause = code && !said.includes(code) ? `${said} (${code})` : said;
    return new GitHubReleaseError(`cannot reach the GitHub API at ${apiUrl} while ${doing}: ${cause} (check GITHUB_API_URL and the network)`);
  }
  const said = apiMessage(e);
  switch (e.status) {
    case 401:
      return new GitHubReleaseError(
        `GitHub rejected the token (401 ${said}) while ${doing}: set GITHUB_TOKEN to a valid token (in a workflow: env GITHUB_TOKEN: \${{ secrets.GITHUB_TOKEN }})`,
        401,
      );
    case 403: {
      if (e.response?.headers?.['x-ratelimit-remaining'] === '0') {
        const reset = Number(e.response.headers['x-ratelimit-reset'] ?? 0);
        const when = reset > 0 ? new Date(reset * 1000).toISOString() : 'later';
        return new GitHubReleaseError(`the GitHub API rate limit is exhausted (403 ${said}) while ${doing}: retry after ${when}`, 403);
      }
      return new GitHubReleaseError(
        `the token may not write releases of ${repository} (403 ${said}) while ${doing}: give the job 'permissions: contents: write' (or a token with the contents:write scope on this repository)`,
        403,
      );
    }
    case 404:
      return new GitHubReleaseError(
        `${repository} was not found at ${apiUrl} (404 ${said}) while ${doing}: check the repository name (owner/name) and that the token can see it (a fine-grained token needs this repository selected)`,
        404,
      );
    default:
      return new GitHubReleaseError(`the GitHub API answered ${e.status} (${said}) while ${doing}`, e.status);
  }
}

function splitRepository(repository: string): { owner: string; repo: string } {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repository);
  if (!m) throw new GitHubReleaseError(`'${repository}' is not a repository name: use owner/name, e.g. octo-org/labforge`);
  return { owner: m[1] ?? '', repo: m[2] ?? '' };
}

function sha256Of(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Creates the release of `tag`, or updates it if it exists (published or draft), then attaches the
 * assets, replacing same-named ones, and publishes it. Throws {@link GitHubReleaseError} with the cause
 * and the fix on 401, 403, 404 and any other refusal.
 */
/**
 * The checks publishRelease makes on its assets before it calls the API (a dry run makes them too): each is
 * a regular file (not a directory, device or FIFO) within GitHub's 2 GiB limit, and no two share a name.
 */
export async function checkReleaseAssets(paths: string[]): Promise<{ name: string; path: string; size: number }[]> {
  const assets: { name: string; path: string; size: number }[] = [];
  for (const path of paths) {
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      throw new GitHubReleaseError(`cannot read the asset ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give files that exist`);
    }
    if (!st.isFile()) throw new GitHubReleaseError(`the asset ${path} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}: give files to attach`);
    if (st.size > MAX_ASSET_BYTES) {
      throw new GitHubReleaseError(`the asset ${path} is ${st.size} bytes, over GitHub's 2 GiB limit for a release asset: publish it to storage (upload-artifact) and link it in the notes`);
    }
    assets.push({ name: basename(path), path, size: st.size });
  }
  const names = assets.map((f) => f.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new GitHubReleaseError(`two assets are named ${dup}: asset names must be unique within a release`);
  return assets;
}

export async function publishRelease(options: PublishReleaseOptions): Promise<PublishedRelease> {
  const log = options.log ?? (() => undefined);
  const apiUrl = (options.apiUrl ?? process.env.GITHUB_API_URL ?? 'https://api.github.com').replace(/\/+$/, '');
  const { owner, repo } = splitRepository(options.repository);
  if (options.token === '') throw new GitHubReleaseError('no GitHub token: set GITHUB_TOKEN to a token with contents:write on the repository');

  // Check and read every asset first: a missing or oversized file fails before anything is written to GitHub.
  const files: { name: string; path: string; data: Buffer }[] = [];
  for (const asset of await checkReleaseAssets(options.assets ?? [])) files.push({ ...asset, data: await readFile(asset.path) });

  const octokit = getOctokit(options.token, {
    baseUrl: apiUrl,
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const explain: Explain = (e, doing) => explainApiFailure(e, doing, options.repository, apiUrl);
  const call: Call = async (doing, fn) => {
    try {
      return await fn();
    } catch (e) {
      throw explain(e, doing);
    }
  };

  // The repository first: a 404 here means the repository (or the token's view of it), not the release.
  await call(`reading the repository ${options.repository}`, () => octokit.rest.repos.get({ owner, repo }));

  const existing = await findRelease(octokit, owner, repo, options.tag, call, explain);
  let release: ApiRelease;
  let action: PublishedRelease['action'];
  if (existing) {
    action = 'updated';
    log(`release ${options.tag} exists (id ${existing.id}${existing.draft ? ', draft' : ''}): updating its notes`);
    release = (
      await call(`updating the release ${options.tag}`, () =>
        octokit.rest.repos.updateRelease({ owner, repo, release_id: existing.id, name: options.name, body: options.body, prerelease: options.prerelease ?? false }),
      )
    ).data as ApiRelease;
  } else {
    log(`creating release ${options.tag} (as a draft until its assets are attached)`);
    try {
      release = (
        await octokit.rest.repos.createRelease({
          owner,
          repo,
          tag_name: options.tag,
          name: options.name,
          body: options.body,
          draft: true,
          prerelease: options.prerelease ?? false,
          ...(options.targetCommitish ? { target_commitish: options.targetCommitish } : {}),
        })
      ).data as ApiRelease;
      action = 'created';
    } catch (e) {
      // Another run created it between our lookup and our create: update that one instead.
      const raced = isRequestFailure(e) && e.status === 422 ? await findRelease(octokit, owner, repo, options.tag, call, explain) : undefined;
      if (!raced) throw explain(e, `creating the release ${options.tag}`);
      action = 'updated';
      log(`release ${options.tag} was created concurrently (id ${raced.id}): updating it`);
      release = (
        await call(`updating the release ${options.tag}`, () =>
          octokit.rest.repos.updateRelease({ owner, repo, release_id: raced.id, name: options.name, body: options.body, prerelease: options.prerelease ?? false }),
        )
      ).data as ApiRelease;
    }
  }

  const current = (await call(`listing the assets of ${options.tag}`, () =>
    octokit.paginate(octokit.rest.repos.listReleaseAssets, { owner, repo, release_id: release.id, per_page: 100 }),
  )) as ApiAsset[];
  const assets: PublishedAsset[] = [];
  for (const file of files) {
    const digest = `sha256:${sha256Of(file.data)}`;
    const old = current.find((a) => a.name === file.name);
    if (old && old.digest === digest && old.size === file.data.length) {
      log(`asset ${file.name}: unchanged (same SHA-256)`);
      assets.push({ name: file.name, size: old.size, url: old.browser_download_url, action: 'unchanged' });
      continue;
    }
    if (old) {
      log(`asset ${file.name}: replacing the existing one (id ${old.id})`);
      await call(`deleting the old asset ${file.name}`, () => octokit.rest.repos.deleteReleaseAsset({ owner, repo, asset_id: old.id }));
    }
    const uploaded = (
      await call(`uploading the asset ${file.name}`, () =>
        octokit.request({
          method: 'POST',
          url: release.upload_url,
          name: file.name,
          data: file.data,
          headers: { 'content-type': file.name.endsWith('.json') ? 'application/json' : 'text/plain', 'content-length': file.data.length },
        }),
      )
    ).data as ApiAsset;
    log(`asset ${file.name}: ${old ? 'replaced' : 'uploaded'} (${file.data.length} bytes)`);
    assets.push({ name: file.name, size: uploaded.size, url: uploaded.browser_download_url, action: old ? 'replaced' : 'uploaded' });
  }

  if (release.draft) {
    log(`publishing release ${options.tag}`);
    release = (
      await call(`publishing the release ${options.tag}`, () => octokit.rest.repos.updateRelease({ owner, repo, release_id: release.id, draft: false }))
    ).data as ApiRelease;
  }
  return { id: release.id, tag: release.tag_name, htmlUrl: release.html_url, action, assets };
}

type Octokit = ReturnType<typeof getOctokit>;
type Call = <T>(doing: string, fn: () => Promise<T>) => Promise<T>;
type Explain = (e: unknown, doing: string) => Error;

/**
 * Finds the release of a tag: the published one through `releases/tags/{tag}`, else a draft (drafts are
 * only visible in the release list, and an interrupted earlier run leaves one behind).
 */
async function findRelease(octokit: Octokit, owner: string, repo: string, tag: string, call: Call, explain: Explain): Promise<ApiRelease | undefined> {
  try {
    return (await octokit.rest.repos.getReleaseByTag({ owner, repo, tag })).data as ApiRelease;
  } catch (e) {
    if (!(isRequestFailure(e) && e.status === 404)) throw explain(e, `looking up the release ${tag}`);
  }
  const all = (await call(`listing the releases of ${owner}/${repo}`, () =>
    octokit.paginate(octokit.rest.repos.listReleases, { owner, repo, per_page: 100 }),
  )) as ApiRelease[];
  return all.find((r) => r.tag_name === tag);
}
