/**
 * A hand-written STAND-IN for the GitHub REST API's release endpoints, on 127.0.0.1.
 *
 * The real API cannot be reached from the test machines, so this server answers the calls that
 * actions/lib/github-release.ts makes, with the shapes, status codes and messages that GitHub documents
 * (docs.github.com/rest/releases): it is not GitHub, and a test that passes here proves the client's
 * logic, not GitHub's behaviour. What it mirrors:
 *   - auth: `Authorization: token X` / `Bearer X`; unknown token → 401 "Bad credentials"; a read-only
 *     token on a write → 403 "Resource not accessible by integration"; unknown repository → 404 "Not Found";
 *   - `GET /repos/{o}/{r}`, `GET /repos/{o}/{r}/releases` (drafts included, `Link` pagination),
 *     `GET …/releases/tags/{tag}` (published releases only), `POST …/releases` (422 already_exists),
 *     `PATCH …/releases/{id}`, `GET …/releases/{id}/assets`, `DELETE …/releases/assets/{id}`;
 *   - uploads at the `upload_url` it hands out (`…/uploads/repos/{o}/{r}/releases/{id}/assets{?name,label}`),
 *     422 when an asset of that name exists, `digest: sha256:…` on every asset.
 * Every request is recorded (method, path, status) so that tests can count creates and uploads.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandInRelease {
  id: number;
  tag_name: string;
  target_commitish: string;
  name: string;
  body: string;
  draft: boolean;
  prerelease: boolean;
  assets: StandInAsset[];
}

export interface StandInAsset {
  id: number;
  name: string;
  label: string | null;
  content_type: string;
  size: number;
  digest: string;
  content: Buffer;
}

export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
}

export interface GitHubApiStandInOptions {
  /** Repositories that exist (`owner/name`). */
  repositories: string[];
  /** Tokens it accepts and what they may do. */
  tokens: Record<string, 'write' | 'read'>;
  /** Page size of the release list (small values exercise pagination). */
  pageSize?: number;
}

export class GitHubApiStandIn {
  readonly requests: RecordedRequest[] = [];
  private readonly releases = new Map<string, StandInRelease[]>();
  private nextId = 1;
  private server?: Server;
  private port = 0;

  constructor(private readonly options: GitHubApiStandInOptions) {
    for (const r of options.repositories) this.releases.set(r, []);
  }

  /** `http://127.0.0.1:PORT`: what GITHUB_API_URL is set to. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => this.send(req, res, 500, { message: `stand-in error: ${(e as Error).message}` }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /** The releases of a repository, drafts included, as the stand-in holds them. */
  releasesOf(repository: string): StandInRelease[] {
    return this.releases.get(repository) ?? [];
  }

  /** Adds a release directly (e.g. a draft left behind by an interrupted run). */
  seedRelease(repository: string, release: Partial<StandInRelease> & { tag_name: string }): StandInRelease {
    const r: StandInRelease = { id: this.nextId++, target_commitish: 'main', name: '', body: '', draft: false, prerelease: false, assets: [], ...release };
    this.releasesOf(repository).unshift(r);
    return r;
  }

  private releaseJson(repository: string, r: StandInRelease): Record<string, unknown> {
    return {
      url: `${this.url}/repos/${repository}/releases/${r.id}`,
      html_url: `https://github.example/${repository}/releases/${r.draft ? `untagged-${r.id}` : `tag/${r.tag_name}`}`,
      assets_url: `${this.url}/repos/${repository}/releases/${r.id}/assets`,
      upload_url: `${this.url}/uploads/repos/${repository}/releases/${r.id}/assets{?name,label}`,
      id: r.id,
      tag_name: r.tag_name,
      target_commitish: r.target_commitish,
      name: r.name,
      body: r.body,
      draft: r.draft,
      prerelease: r.prerelease,
      assets: r.assets.map((a) => this.assetJson(repository, r, a)),
    };
  }

  private assetJson(repository: string, r: StandInRelease, a: StandInAsset): Record<string, unknown> {
    return {
      url: `${this.url}/repos/${repository}/releases/assets/${a.id}`,
      browser_download_url: `https://github.example/${repository}/releases/download/${r.tag_name}/${a.name}`,
      id: a.id,
      name: a.name,
      label: a.label,
      state: 'uploaded',
      content_type: a.content_type,
      size: a.size,
      digest: a.digest,
      download_count: 0,
    };
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    this.requests.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0] ?? '', status });
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(text);
  }

  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const body = await this.readBody(req);
    const auth = /^(?:token|bearer) (.+)$/i.exec(req.headers.authorization ?? '');
    const scope = auth ? this.options.tokens[auth[1] ?? ''] : undefined;
    if (!scope) return this.send(req, res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' });

    const m = /^(\/uploads)?\/repos\/([^/]+\/[^/]+)(\/.*)?$/.exec(url.pathname);
    if (!m) return this.send(req, res, 404, { message: 'Not Found', status: '404' });
    const upload = m[1] !== undefined;
    const repository = decodeURIComponent(m[2] ?? '');
    const rest = m[3] ?? '';
    const releases = this.releases.get(repository);
    if (!releases) return this.send(req, res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/repos/repos#get-a-repository', status: '404' });
    if (method !== 'GET' && scope !== 'write') {
      return this.send(req, res, 403, { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest/releases/releases', status: '403' });
    }
    const notFound = () => this.send(req, res, 404, { message: 'Not Found', status: '404' });
    const json = (): Record<string, unknown> => (body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {});
    let p: RegExpExecArray | null;

    if (upload) {
      p = /^\/releases\/(\d+)\/assets$/.exec(rest);
      const release = p ? releases.find((r) => r.id === Number(p![1])) : undefined;
      if (method !== 'POST' || !release) return notFound();
      const name = url.searchParams.get('name') ?? '';
      if (name === '') return this.send(req, res, 422, { message: 'Validation Failed', errors: [{ resource: 'ReleaseAsset', code: 'missing_field', field: 'name' }] });
      if (release.assets.some((a) => a.name === name)) {
        return this.send(req, res, 422, { message: 'Validation Failed', errors: [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }] });
      }
      const asset: StandInAsset = {
        id: this.nextId++,
        name,
        label: url.searchParams.get('label'),
        content_type: req.headers['content-type'] ?? 'application/octet-stream',
        size: body.length,
        digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
        content: body,
      };
      release.assets.push(asset);
      return this.send(req, res, 201, this.assetJson(repository, release, asset));
    }

    if (rest === '' && method === 'GET') return this.send(req, res, 200, { full_name: repository, name: repository.split('/')[1], private: false });

    if (rest === '/releases' && method === 'GET') {
      const pageSize = Math.min(Number(url.searchParams.get('per_page') ?? 30), this.options.pageSize ?? 100);
      const page = Number(url.searchParams.get('page') ?? 1);
      const slice = releases.slice((page - 1) * pageSize, page * pageSize);
      const headers: Record<string, string> = {};
      if (page * pageSize < releases.length) headers['link'] = `<${this.url}/repos/${repository}/releases?per_page=${pageSize}&page=${page + 1}>; rel="next"`;
      return this.send(req, res, 200, slice.map((r) => this.releaseJson(repository, r)), headers);
    }

    if (rest === '/releases' && method === 'POST') {
      const input = json();
      const tag = String(input['tag_name'] ?? '');
      if (tag === '') return this.send(req, res, 422, { message: 'Validation Failed', errors: [{ resource: 'Release', code: 'missing_field', field: 'tag_name' }] });
      if (releases.some((r) => r.tag_name === tag)) {
        return this.send(req, res, 422, { message: 'Validation Failed', errors: [{ resource: 'Release', code: 'already_exists', field: 'tag_name' }] });
      }
      const r = this.seedRelease(repository, {
        tag_name: tag,
        target_commitish: String(input['target_commitish'] ?? 'main'),
        name: String(input['name'] ?? ''),
        body: String(input['body'] ?? ''),
        draft: input['draft'] === true,
        prerelease: input['prerelease'] === true,
      });
      return this.send(req, res, 201, this.releaseJson(repository, r));
    }

    if ((p = /^\/releases\/tags\/(.+)$/.exec(rest)) && method === 'GET') {
      const tag = decodeURIComponent(p[1] ?? '');
      const r = releases.find((x) => x.tag_name === tag && !x.draft);
      return r ? this.send(req, res, 200, this.releaseJson(repository, r)) : notFound();
    }

    if ((p = /^\/releases\/assets\/(\d+)$/.exec(rest)) && method === 'DELETE') {
      const id = Number(p[1]);
      const r = releases.find((x) => x.assets.some((a) => a.id === id));
      if (!r) return notFound();
      r.assets = r.assets.filter((a) => a.id !== id);
      return this.send(req, res, 204);
    }

    if ((p = /^\/releases\/(\d+)\/assets$/.exec(rest)) && method === 'GET') {
      const r = releases.find((x) => x.id === Number(p![1]));
      return r ? this.send(req, res, 200, r.assets.map((a) => this.assetJson(repository, r, a))) : notFound();
    }

    if ((p = /^\/releases\/(\d+)$/.exec(rest)) && method === 'PATCH') {
      const r = releases.find((x) => x.id === Number(p![1]));
      if (!r) return notFound();
      const input = json();
      if (typeof input['name'] === 'string') r.name = input['name'];
      if (typeof input['body'] === 'string') r.body = input['body'];
      if (typeof input['draft'] === 'boolean') r.draft = input['draft'];
      if (typeof input['prerelease'] === 'boolean') r.prerelease = input['prerelease'];
      return this.send(req, res, 200, this.releaseJson(repository, r));
    }

    return notFound();
  }
}
