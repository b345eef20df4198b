/**
 * A Google Cloud Storage JSON-API **emulator** for tests and benchmarks: a node:http server on 127.0.0.1 that
 * answers the requests @google-cloud/storage 7.x actually sends (read from its build/cjs/src: storage.js,
 * bucket.js, file.js, resumable-upload.js, nodejs-common/util.js).
 *
 * What it emulates:
 * - buckets (create, get, 404 for unknown buckets, 403 for buckets marked forbidden);
 * - uploads at `/upload/storage/v1/b/B/o`: `uploadType=media`, `multipart` (multipart/related with a JSON
 *   part and a data part) and `resumable` (session `Location`, `PUT` with `Content-Range`
 *   `bytes A-B/TOTAL`, `bytes A-*\/TOTAL`, `bytes *\/TOTAL` status queries, `308 Resume Incomplete` with
 *   `Range: bytes=0-N`; a non-final chunk persists only whole 256 KiB units, like the service);
 * - objects: get metadata, `alt=media` with `Range`, patch metadata, delete, list with `prefix`,
 *   `delimiter`, `startOffset`, `maxResults`/`pageToken`, compose (1–32 sources, no data copied: composed
 *   objects share the stored extents, their CRC32C is combined and, as on GCS, they have no MD5), object
 *   ACL inserts (`makePublic`), and public / signed-URL style `GET /BUCKET/OBJECT` (signatures are not checked);
 * - generation preconditions `ifGenerationMatch`, `ifGenerationNotMatch`, `ifMetagenerationMatch` (412);
 * - `x-goog-hash: crc32c=…,md5=…` on downloads; client-supplied `crc32c`/`md5Hash` metadata and
 *   `X-Goog-Hash` on uploads are checked (400 on mismatch).
 *
 * Object data lives in files under a temporary directory (tests upload GiBs), never in memory.
 * Fault injection: an HTTP status (503, 429, …) on the Nth matching request, a connection reset after N
 * body bytes, or one corrupted byte in an upload or download body.
 *
 * `GET /_emulator/stats` returns `{ uploadedBytes, requests }` (for benchmarks that run it in another process).
 *
 * Point the real client at it with `new Storage({ apiEndpoint: emulator.endpoint, projectId })` (requests to
 * a custom endpoint carry no credentials unless `useAuthWithCustomEndpoint` is set) or with
 * `STORAGE_EMULATOR_HOST=emulator.endpoint`. The JSON API is served both under `/storage/v1/` and at the
 * root, because the client drops `/storage/v1` when it takes the endpoint from STORAGE_EMULATOR_HOST.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32cCombine, crc32cFromBase64, crc32cToBase64, crc32cUpdate } from '../../actions/lib/crc32c.js';

/** A resumable-upload chunk must be a multiple of this, except the last one. */
export const RESUMABLE_CHUNK_UNIT = 256 * 1024;
const MAX_COMPOSE_SOURCES = 32;

interface Extent {
  segment: string;
  offset: number;
  length: number;
}

interface StoredObject {
  bucket: string;
  name: string;
  generation: number;
  metageneration: number;
  size: number;
  crc32c: number;
  md5?: string;
  contentType: string;
  metadata?: Record<string, string>;
  cacheControl?: string;
  contentDisposition?: string;
  componentCount?: number;
  extents: Extent[];
  timeCreated: string;
  updated: string;
  publicRead: boolean;
}

interface BucketState {
  name: string;
  uniformAccess: boolean;
  forbidden: boolean;
  objects: Map<string, StoredObject>;
  timeCreated: string;
}

interface UploadSession {
  id: string;
  bucket: string;
  name: string;
  resource: Record<string, unknown>;
  declaredSize?: number;
  query: URLSearchParams;
  segment: string;
  fd: number;
  offset: number;
  crc: number;
  md5: Hash;
  done?: StoredObject;
  failed?: boolean;
}

/** Which requests a fault applies to; every given field must match. */
export interface FaultMatch {
  method?: string;
  /** Tested against the URL path (percent-decoded). */
  path?: RegExp;
  /** `media`, `multipart` or `resumable` (resumable matches both the session start and its PUTs). */
  uploadType?: 'media' | 'multipart' | 'resumable';
  /** Tested against the object name the request is about. */
  object?: RegExp;
}

export type FaultAction =
  | { status: number; message?: string }
  | { reset: { afterBodyBytes: number } }
  | { corrupt: { atByte: number } };

export interface FaultRule {
  match?: FaultMatch;
  /** Fire on the Nth matching request (1-based). Default 1. */
  nth?: number;
  /** Fire on this many consecutive matching requests from the Nth. Default 1. */
  times?: number;
  action: FaultAction;
}

interface ActiveFault extends FaultRule {
  seen: number;
  fired: number;
}

export interface EmulatorRequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  object?: string;
  status?: number;
  /** Request body bytes the emulator read (upload data and JSON bodies). */
  bodyBytes: number;
  contentEncoding?: string;
  contentRange?: string;
  fault?: string;
}

export interface GcsEmulatorOptions {
  /** Buckets that exist from the start. */
  buckets?: string[];
  /** Directory for object data; a temporary one (removed by stop()) by default. */
  dataDir?: string;
  /**
   * Caps each request's upload body at this many bytes per second, modelling the per-connection
   * throughput a runner gets to the real service over a WAN (benchmarks). Unlimited by default.
   */
  streamBytesPerSecond?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

/** A running emulator. Stop it with {@link GcsEmulator.stop}. */
export class GcsEmulator {
  /** `http://127.0.0.1:PORT`: the value for `apiEndpoint` or STORAGE_EMULATOR_HOST. */
  endpoint = '';
  port = 0;
  readonly dataDir: string;
  /** Every request, in order. */
  readonly requests: EmulatorRequestRecord[] = [];
  /** Upload body bytes received (media, multipart and resumable), counted as they arrive: retried, reset and abandoned bodies included. */
  uploadedBytes = 0;

  private readonly server: Server;
  private readonly ownsDataDir: boolean;
  private readonly buckets = new Map<string, BucketState>();
  private readonly sessions = new Map<string, UploadSession>();
  private readonly segmentRefs = new Map<string, number>();
  private faults: ActiveFault[] = [];
  private lastGeneration = 0;
  private readonly streamBytesPerSecond: number | undefined;
  private readonly scratch = new ScratchPool();

  private constructor(opts: GcsEmulatorOptions) {
    this.ownsDataDir = opts.dataDir === undefined;
    this.streamBytesPerSecond = opts.streamBytesPerSecond;
    this.dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'labforge-gcs-emulator-'));
    for (const b of opts.buckets ?? []) this.createBucket(b);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) this.sendError(res, e instanceof HttpError ? e : new HttpError(500, String(e), 'backendError'));
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 5_000;
  }

  /** Starts an emulator on 127.0.0.1 with a random free port. */
  static async start(opts: GcsEmulatorOptions = {}): Promise<GcsEmulator> {
    const emulator = new GcsEmulator(opts);
    emulator.server.listen(0, '127.0.0.1');
    await once(emulator.server, 'listening');
    emulator.port = (emulator.server.address() as AddressInfo).port;
    emulator.endpoint = `http://127.0.0.1:${emulator.port}`;
    return emulator;
  }

  /** Stops the server, closes open sessions and removes the data directory it created. */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((res) => this.server.close(() => res()));
    for (const s of this.sessions.values()) this.closeSession(s);
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Creates a bucket. `uniformAccess` rejects object ACLs like uniform bucket-level access does. */
  createBucket(name: string, opts: { uniformAccess?: boolean; forbidden?: boolean } = {}): void {
    this.buckets.set(name, {
      name,
      uniformAccess: opts.uniformAccess ?? false,
      forbidden: opts.forbidden ?? false,
      objects: new Map(),
      timeCreated: new Date().toISOString(),
    });
  }

  /** Adds a fault; it fires on the Nth matching request. */
  injectFault(rule: FaultRule): void {
    this.faults.push({ ...rule, seen: 0, fired: 0 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Names of the objects in a bucket, sorted. */
  objectNames(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.objects.keys() ?? [])].sort();
  }

  /** An object's metadata as the JSON API returns it, or undefined. */
  objectResource(bucket: string, name: string): Record<string, unknown> | undefined {
    const o = this.buckets.get(bucket)?.objects.get(name);
    return o ? this.resource(o) : undefined;
  }

  /** Reads a whole object (small objects only; for checks in tests). */
  async readObject(bucket: string, name: string): Promise<Buffer> {
    const o = this.buckets.get(bucket)?.objects.get(name);
    if (!o) throw new Error(`emulator: no object gs://${bucket}/${name}`);
    const chunks: Buffer[] = [];
    for await (const c of this.extentStream(o.extents, 0, o.size)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** Number of resumable sessions not yet finished. */
  openSessionCount(): number {
    return [...this.sessions.values()].filter((s) => !s.done && !s.failed).length;
  }

  // ---------------------------------------------------------------- request handling

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.endpoint);
    const method = req.method ?? 'GET';
    const query = url.searchParams;
    const rawSegments = url.pathname.split('/').slice(1);
    const segments = rawSegments.map((s) => decodeURIComponent(s));
    const record: EmulatorRequestRecord = {
      method,
      path: decodeURIComponent(url.pathname),
      query: Object.fromEntries(query),
      bodyBytes: 0,
      ...(req.headers['content-encoding'] ? { contentEncoding: String(req.headers['content-encoding']) } : {}),
      ...(req.headers['content-range'] ? { contentRange: String(req.headers['content-range']) } : {}),
    };
    this.requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));

    const session = query.get('upload_id') ? this.sessions.get(query.get('upload_id')!) : undefined;
    const objectName = this.objectNameOf(segments, query, session);
    if (objectName !== undefined) record.object = objectName;
    const uploadType = session ? 'resumable' : (query.get('uploadType') ?? undefined);
    const fault = this.takeFault({ method, path: record.path, uploadType, object: objectName });
    if (fault) record.fault = JSON.stringify(fault.action);
    if (fault && 'status' in fault.action) {
      req.resume();
      throw new HttpError(fault.action.status, fault.action.message ?? `emulated fault: HTTP ${fault.action.status}`, fault.action.status === 429 ? 'rateLimitExceeded' : 'backendError');
    }
    const io: BodyFaults = { record, emulator: this, ...(this.streamBytesPerSecond ? { bytesPerSecond: this.streamBytesPerSecond } : {}) };
    if (fault && 'reset' in fault.action) io.resetAfter = fault.action.reset.afterBodyBytes;
    if (fault && 'corrupt' in fault.action) io.corruptAt = fault.action.corrupt.atByte;

    let p = segments;
    if (p[0] === '_emulator' && p[1] === 'stats') {
      req.resume();
      return sendJson(res, 200, { uploadedBytes: this.uploadedBytes, requests: this.requests.length });
    }
    if (p[0] === 'upload' && p[1] === 'storage' && p[2] === 'v1') return this.handleUpload(req, res, p.slice(3), query, io);
    if (p[0] === 'download' && p[1] === 'storage' && p[2] === 'v1') p = p.slice(3);
    else if (p[0] === 'storage' && p[1] === 'v1') p = p.slice(2);
    else if (p[0] !== 'b' && p.length >= 2 && method === 'GET') return this.handlePublicGet(req, res, p, io);
    return this.handleJson(req, res, p, query, io);
  }

  private objectNameOf(segments: string[], query: URLSearchParams, session?: UploadSession): string | undefined {
    if (session) return session.name;
    if (query.get('name')) return query.get('name')!;
    const i = segments.indexOf('o');
    if (i >= 0 && segments[i + 1] !== undefined) return segments[i + 1];
    return undefined;
  }

  private takeFault(req: { method: string; path: string; uploadType?: string; object?: string }): ActiveFault | undefined {
    let chosen: ActiveFault | undefined;
    for (const f of this.faults) {
      const m = f.match ?? {};
      if (m.method && m.method !== req.method) continue;
      if (m.path && !m.path.test(req.path)) continue;
      if (m.uploadType && m.uploadType !== req.uploadType) continue;
      if (m.object && !(req.object !== undefined && m.object.test(req.object))) continue;
      f.seen++; // every rule counts its own matching requests
      if (!chosen && f.seen >= (f.nth ?? 1) && f.fired < (f.times ?? 1)) {
        f.fired++;
        chosen = f;
      }
    }
    return chosen;
  }

  private bucketOf(name: string | undefined): BucketState {
    const b = name === undefined ? undefined : this.buckets.get(name);
    if (!b) throw new HttpError(404, 'The specified bucket does not exist.', 'notFound');
    if (b.forbidden) {
      throw new HttpError(403, `anonymous caller does not have storage.objects access to the Google Cloud Storage bucket ${b.name}. Permission denied.`, 'forbidden');
    }
    return b;
  }

  private async handleJson(req: IncomingMessage, res: ServerResponse, p: string[], q: URLSearchParams, io: BodyFaults): Promise<void> {
    const method = req.method ?? 'GET';
    if (p[0] !== 'b') throw new HttpError(404, `Not Found: ${p.join('/')}`, 'notFound');
    if (p.length === 1) {
      if (method === 'POST') {
        const body = (await readJson(req, io)) as { name?: string };
        if (!body.name) throw new HttpError(400, 'Required bucket name', 'required');
        if (this.buckets.has(body.name)) throw new HttpError(409, 'Your previous request to create the named bucket succeeded and you already own it.', 'conflict');
        this.createBucket(body.name);
        return sendJson(res, 200, this.bucketResource(this.buckets.get(body.name)!));
      }
      return sendJson(res, 200, { kind: 'storage#buckets', items: [...this.buckets.values()].map((b) => this.bucketResource(b)) });
    }
    const bucket = this.bucketOf(p[1]);
    if (p.length === 2) {
      if (method === 'GET') return sendJson(res, 200, this.bucketResource(bucket));
      if (method === 'DELETE') {
        if (bucket.objects.size > 0) throw new HttpError(409, 'The bucket you tried to delete is not empty.', 'conflict');
        this.buckets.delete(bucket.name);
        return sendEmpty(res, 204);
      }
      throw new HttpError(405, `method ${method} not emulated for buckets`, 'methodNotAllowed');
    }
    if (p[2] !== 'o') throw new HttpError(404, `Not Found: ${p.join('/')}`, 'notFound');
    if (p.length === 3) {
      if (method === 'GET') return sendJson(res, 200, this.list(bucket, q));
      throw new HttpError(405, `method ${method} not emulated on the object collection`, 'methodNotAllowed');
    }
    const name = p[3]!;
    if (p.length === 5 && p[4] === 'compose' && method === 'POST') return this.compose(req, res, bucket, name, q, io);
    if (p.length === 5 && p[4] === 'acl' && method === 'POST') {
      const body = (await readJson(req, io)) as { entity?: string; role?: string };
      const o = this.getObject(bucket, name, q);
      if (bucket.uniformAccess) {
        throw new HttpError(400, 'Cannot insert legacy ACL for an object when uniform bucket-level access is enabled. Read more at https://cloud.google.com/storage/docs/uniform-bucket-level-access', 'invalid');
      }
      if (body.entity === 'allUsers' && body.role === 'READER') o.publicRead = true;
      return sendJson(res, 200, { kind: 'storage#objectAccessControl', entity: body.entity, role: body.role, bucket: bucket.name, object: name });
    }
    if (p.length !== 4) throw new HttpError(404, `Not Found: ${p.join('/')}`, 'notFound');
    if (method === 'GET') {
      const o = this.getObject(bucket, name, q);
      if (q.get('alt') === 'media') return this.sendMedia(req, res, o, io);
      return sendJson(res, 200, this.resource(o));
    }
    if (method === 'DELETE') {
      const o = this.getObject(bucket, name, q);
      bucket.objects.delete(name);
      this.release(o.extents);
      return sendEmpty(res, 204);
    }
    if (method === 'PATCH' || method === 'PUT') {
      const body = (await readJson(req, io)) as Record<string, unknown>;
      const o = this.getObject(bucket, name, q);
      const mm = q.get('ifMetagenerationMatch');
      if (mm !== null && Number(mm) !== o.metageneration) throw preconditionFailed();
      if (body.metadata !== undefined) {
        const merged: Record<string, string> = method === 'PATCH' ? { ...(o.metadata ?? {}) } : {};
        for (const [k, v] of Object.entries((body.metadata ?? {}) as Record<string, string | null>)) {
          if (v === null) delete merged[k];
          else merged[k] = String(v);
        }
        o.metadata = merged;
      }
      if (typeof body.contentType === 'string') o.contentType = body.contentType;
      if (typeof body.cacheControl === 'string') o.cacheControl = body.cacheControl;
      if (typeof body.contentDisposition === 'string') o.contentDisposition = body.contentDisposition;
      o.metageneration++;
      o.updated = new Date().toISOString();
      return sendJson(res, 200, this.resource(o));
    }
    throw new HttpError(405, `method ${method} not emulated on objects`, 'methodNotAllowed');
  }

  /** `GET /BUCKET/OBJECT`: the public URL form (`https://storage.googleapis.com/B/O`) and signed URLs. */
  private async handlePublicGet(req: IncomingMessage, res: ServerResponse, p: string[], io: BodyFaults): Promise<void> {
    const bucket = this.bucketOf(p[0]);
    const name = p.slice(1).join('/');
    const o = bucket.objects.get(name);
    if (!o) throw new HttpError(404, 'No such object.', 'notFound');
    return this.sendMedia(req, res, o, io);
  }

  private getObject(bucket: BucketState, name: string, q: URLSearchParams): StoredObject {
    const o = bucket.objects.get(name);
    const gm = q.get('ifGenerationMatch');
    if (!o) {
      if (gm !== null && gm !== '0') throw preconditionFailed();
      throw new HttpError(404, `No such object: ${bucket.name}/${name}`, 'notFound');
    }
    if (gm !== null && Number(gm) !== o.generation) throw preconditionFailed();
    const gnm = q.get('ifGenerationNotMatch');
    if (gnm !== null && Number(gnm) === o.generation) throw new HttpError(304, 'Not Modified', 'notModified');
    return o;
  }

  private list(bucket: BucketState, q: URLSearchParams): Record<string, unknown> {
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const max = Math.min(Number(q.get('maxResults') ?? 1000) || 1000, 1000);
    const startOffset = q.get('startOffset') ?? '';
    const token = q.get('pageToken') ? (JSON.parse(Buffer.from(q.get('pageToken')!, 'base64').toString()) as { after: string }) : undefined;
    const names = [...bucket.objects.keys()].filter((n) => n.startsWith(prefix) && n >= startOffset && (!token || n > token.after)).sort();
    const items: Record<string, unknown>[] = [];
    const prefixes: string[] = [];
    let last: string | undefined;
    let more = false;
    for (const n of names) {
      if (last !== undefined && prefixes.length > 0 && n.startsWith(prefixes[prefixes.length - 1]!)) {
        last = n;
        continue;
      }
      if (items.length + prefixes.length >= max) {
        more = true;
        break;
      }
      const rest = n.slice(prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      if (cut >= 0) prefixes.push(prefix + rest.slice(0, cut + delimiter.length));
      else items.push(this.resource(bucket.objects.get(n)!));
      last = n;
    }
    const out: Record<string, unknown> = { kind: 'storage#objects' };
    if (items.length > 0) out.items = items;
    if (prefixes.length > 0) out.prefixes = prefixes;
    if (more && last !== undefined) {
      // Skip the rest of a prefix that was already reported.
      const after = prefixes.length > 0 && last.startsWith(prefixes[prefixes.length - 1]!) ? `${prefixes[prefixes.length - 1]!}\uffff` : last;
      out.nextPageToken = Buffer.from(JSON.stringify({ after })).toString('base64');
    }
    return out;
  }

  private async compose(req: IncomingMessage, res: ServerResponse, bucket: BucketState, name: string, q: URLSearchParams, io: BodyFaults): Promise<void> {
    const body = (await readJson(req, io)) as {
      sourceObjects?: { name: string; generation?: string | number; objectPreconditions?: { ifGenerationMatch?: string | number } }[];
      destination?: Record<string, unknown>;
    };
    const sources = body.sourceObjects ?? [];
    if (sources.length === 0) throw new HttpError(400, 'Required: sourceObjects', 'required');
    if (sources.length > MAX_COMPOSE_SOURCES) throw new HttpError(400, `The number of source components provided (${sources.length}) exceeds the maximum (${MAX_COMPOSE_SOURCES})`, 'invalid');
    const parts = sources.map((s) => {
      const o = bucket.objects.get(s.name);
      if (!o) throw new HttpError(404, `Object ${s.name} (generation: ${s.generation ?? ''}) not found.`, 'notFound');
      const want = s.objectPreconditions?.ifGenerationMatch ?? s.generation;
      if (want !== undefined && Number(want) !== o.generation) throw preconditionFailed();
      return o;
    });
    this.checkWritePreconditions(bucket, name, q);
    let crc = 0;
    let size = 0;
    const extents: Extent[] = [];
    let components = 0;
    for (const o of parts) {
      crc = size === 0 ? o.crc32c : crc32cCombine(crc, o.crc32c, o.size);
      size += o.size;
      extents.push(...o.extents);
      components += o.componentCount ?? 1;
    }
    if (components > 1024) throw new HttpError(400, 'The composite object would have more than 1024 components.', 'invalid');
    const dest = body.destination ?? {};
    const o = this.storeObject(bucket, name, {
      size,
      crc32c: crc,
      extents,
      contentType: typeof dest.contentType === 'string' ? dest.contentType : (parts[0]!.contentType ?? 'application/octet-stream'),
      metadata: dest.metadata as Record<string, string> | undefined,
      componentCount: components,
    });
    sendJson(res, 200, this.resource(o));
  }

  // ---------------------------------------------------------------- uploads

  private async handleUpload(req: IncomingMessage, res: ServerResponse, p: string[], q: URLSearchParams, io: BodyFaults): Promise<void> {
    const method = req.method ?? 'POST';
    if (p[0] !== 'b' || p[2] !== 'o' || p.length !== 3) throw new HttpError(404, `Not Found: upload ${p.join('/')}`, 'notFound');
    const bucket = this.bucketOf(p[1]);
    const uploadId = q.get('upload_id');
    if (uploadId !== null) {
      const s = this.sessions.get(uploadId);
      if (!s) throw new HttpError(404, 'No such upload session.', 'notFound');
      if (method === 'DELETE') {
        s.failed = true;
        this.closeSession(s);
        req.resume();
        return sendEmpty(res, 499);
      }
      return this.resumableChunk(req, res, bucket, s, io);
    }
    if (method !== 'POST') throw new HttpError(405, `method ${method} not emulated for uploads`, 'methodNotAllowed');
    const type = q.get('uploadType');
    if (type === 'resumable') {
      const resource = ((await readJson(req, io)) ?? {}) as Record<string, unknown>;
      const name = q.get('name') ?? (typeof resource.name === 'string' ? resource.name : undefined);
      if (!name) throw new HttpError(400, 'Required: object name', 'required');
      this.checkWritePreconditions(bucket, name, q);
      const id = randomUUID().replace(/-/g, '');
      const segment = this.newSegment();
      const declared = req.headers['x-upload-content-length'];
      const s: UploadSession = {
        id,
        bucket: bucket.name,
        name,
        resource: { ...resource, ...(req.headers['x-upload-content-type'] ? { contentType: String(req.headers['x-upload-content-type']) } : {}) },
        query: new URLSearchParams(q),
        segment,
        fd: openSync(join(this.dataDir, segment), 'w'),
        offset: 0,
        crc: 0,
        md5: createHash('md5'),
        ...(declared !== undefined ? { declaredSize: Number(declared) } : {}),
      };
      this.sessions.set(id, s);
      res.setHeader('Location', `${this.endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket.name)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`);
      res.setHeader('X-GUploader-UploadID', id);
      return sendJson(res, 200, {});
    }
    if (type === 'media') {
      const name = q.get('name');
      if (!name) throw new HttpError(400, 'Required: name', 'required');
      this.checkWritePreconditions(bucket, name, q);
      const stored = await this.receiveToSegment(req, io);
      const o = this.finishUpload(bucket, name, q, stored, { contentType: req.headers['content-type'] ?? 'application/octet-stream' });
      return sendJson(res, 200, this.resource(o));
    }
    if (type === 'multipart') {
      const ct = String(req.headers['content-type'] ?? '');
      const boundary = /boundary="?([^";]+)"?/.exec(ct)?.[1];
      if (!boundary) throw new HttpError(400, 'multipart upload without a boundary', 'invalid');
      // A corrupt fault damages the object data, not the multipart framing around it.
      const corruptAt = io.corruptAt;
      delete io.corruptAt;
      const scratch = await readBodyInto(req, io, this.scratch);
      try {
        return this.finishMultipart(res, bucket, q, splitMultipart(scratch.body, boundary), corruptAt);
      } finally {
        this.scratch.release(scratch.buffer);
      }
    }
    throw new HttpError(400, `uploadType '${type ?? ''}' is not emulated`, 'invalid');
  }

  /** Stores the data part of a multipart upload (its buffer is the pool's: nothing here may keep it). */
  private finishMultipart(res: ServerResponse, bucket: BucketState, q: URLSearchParams, parts: { headers: Record<string, string>; body: Buffer }[], corruptAt: number | undefined): void {
    const [metaPart, dataPart] = parts;
    if (!metaPart || !dataPart) throw new HttpError(400, 'multipart upload must have a metadata part and a data part', 'invalid');
    if (corruptAt !== undefined && corruptAt < dataPart.body.length) dataPart.body[corruptAt] ^= 0xff;
    const resource = JSON.parse(metaPart.body.toString('utf8') || '{}') as Record<string, unknown>;
    const name = q.get('name') ?? (typeof resource.name === 'string' ? resource.name : undefined);
    if (!name) throw new HttpError(400, 'Required: object name', 'required');
    this.checkWritePreconditions(bucket, name, q);
    const stored = this.writeSegment(dataPart.body);
    const o = this.finishUpload(bucket, name, q, stored, { ...resource, contentType: (resource.contentType as string) ?? dataPart.headers['content-type'] ?? 'application/octet-stream' });
    return sendJson(res, 200, this.resource(o));
  }

  private async resumableChunk(req: IncomingMessage, res: ServerResponse, bucket: BucketState, s: UploadSession, io: BodyFaults): Promise<void> {
    if (s.done) {
      req.resume();
      return sendJson(res, 200, this.resource(s.done));
    }
    if (s.failed) {
      req.resume();
      throw new HttpError(410, 'The upload session was cancelled or failed; start a new one.', 'gone');
    }
    const range = String(req.headers['content-range'] ?? '');
    let start: number | undefined;
    let end: number | undefined;
    let total: number | undefined;
    const m = /^bytes (\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec(range.trim());
    if (range === '') {
      start = 0;
    } else if (!m) {
      req.resume();
      throw new HttpError(400, `Invalid Content-Range: '${range}'`, 'invalid');
    } else {
      if (m[1] !== '*') start = Number(m[2]);
      if (m[3] !== undefined && m[3] !== '*') end = Number(m[3]);
      if (m[4] !== '*') total = Number(m[4]);
    }
    total ??= s.declaredSize;
    if (start === undefined) {
      // Status query: `bytes */TOTAL` or `bytes */*`.
      req.resume();
      if (total !== undefined && s.offset === total) return this.finalizeSession(req, res, bucket, s);
      return sendIncomplete(res, s.offset);
    }
    if (start > s.offset) {
      req.resume();
      throw new HttpError(400, `Content-Range starts at ${start} but the session has ${s.offset} bytes; query the status with 'bytes */*' first`, 'invalid');
    }
    const chunkIsFinal = end === undefined ? true : total !== undefined && end + 1 === total;
    let skip = s.offset - start;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const persist = (final: boolean) => {
      const unit = final ? pendingBytes : Math.floor(pendingBytes / RESUMABLE_CHUNK_UNIT) * RESUMABLE_CHUNK_UNIT;
      if (unit === 0) return;
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      const keep = all.subarray(0, unit);
      writeAll(s.fd, keep, s.offset);
      s.crc = crc32cUpdate(s.crc, keep);
      s.md5.update(keep);
      s.offset += unit;
      const rest = all.subarray(unit);
      pending = rest.length > 0 ? [Buffer.from(rest)] : [];
      pendingBytes = rest.length;
    };
    const complete = await consumeBody(req, io, (chunk) => {
      if (skip > 0) {
        const drop = Math.min(skip, chunk.length);
        skip -= drop;
        chunk = chunk.subarray(drop);
      }
      if (chunk.length === 0) return;
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= 8 * RESUMABLE_CHUNK_UNIT) persist(false);
    });
    if (!complete) {
      persist(false); // connection reset: keep only whole units, like the service
      return;
    }
    const finalNow = chunkIsFinal && (total === undefined || s.offset + pendingBytes === total);
    persist(finalNow);
    if (finalNow || (total !== undefined && s.offset === total)) {
      return this.finalizeSession(req, res, bucket, s);
    }
    return sendIncomplete(res, s.offset);
  }

  private finalizeSession(req: IncomingMessage, res: ServerResponse, bucket: BucketState, s: UploadSession): void {
    fsyncSync(s.fd);
    closeSync(s.fd);
    s.fd = -1;
    const md5 = s.md5.digest('base64');
    try {
      checkClientHashes(req.headers['x-goog-hash'], s.resource, s.crc, md5);
      const o = this.finishUpload(bucket, s.name, s.query, { segment: s.segment, size: s.offset, crc32c: s.crc, md5 }, s.resource);
      s.done = o;
      sendJson(res, 200, this.resource(o));
    } catch (e) {
      s.failed = true;
      this.dropSegmentFile(s.segment);
      throw e;
    }
  }

  private closeSession(s: UploadSession): void {
    if (s.fd >= 0) {
      closeSync(s.fd);
      s.fd = -1;
    }
    if (!s.done) this.dropSegmentFile(s.segment);
  }

  private finishUpload(
    bucket: BucketState,
    name: string,
    q: URLSearchParams,
    stored: { segment: string; size: number; crc32c: number; md5: string },
    resource: Record<string, unknown>,
  ): StoredObject {
    try {
      checkClientHashes(undefined, resource, stored.crc32c, stored.md5);
      this.checkWritePreconditions(bucket, name, q);
    } catch (e) {
      this.dropSegmentFile(stored.segment);
      throw e;
    }
    return this.storeObject(bucket, name, {
      size: stored.size,
      crc32c: stored.crc32c,
      md5: stored.md5,
      extents: stored.size > 0 ? [{ segment: stored.segment, offset: 0, length: stored.size }] : [],
      contentType: typeof resource.contentType === 'string' ? resource.contentType : 'application/octet-stream',
      metadata: resource.metadata as Record<string, string> | undefined,
      ...(typeof resource.cacheControl === 'string' ? { cacheControl: resource.cacheControl } : {}),
      ...(typeof resource.contentDisposition === 'string' ? { contentDisposition: resource.contentDisposition } : {}),
    });
  }

  private checkWritePreconditions(bucket: BucketState, name: string, q: URLSearchParams): void {
    const existing = bucket.objects.get(name);
    const gm = q.get('ifGenerationMatch');
    if (gm !== null && Number(gm) !== (existing?.generation ?? 0)) throw preconditionFailed();
    const gnm = q.get('ifGenerationNotMatch');
    if (gnm !== null && Number(gnm) === (existing?.generation ?? 0)) throw preconditionFailed();
    const mm = q.get('ifMetagenerationMatch');
    if (mm !== null && (!existing || Number(mm) !== existing.metageneration)) throw preconditionFailed();
  }

  private storeObject(
    bucket: BucketState,
    name: string,
    o: Pick<StoredObject, 'size' | 'crc32c' | 'extents' | 'contentType'> & Partial<StoredObject>,
  ): StoredObject {
    const now = new Date().toISOString();
    const stored: StoredObject = {
      bucket: bucket.name,
      name,
      generation: this.nextGeneration(),
      metageneration: 1,
      timeCreated: now,
      updated: now,
      publicRead: false,
      ...o,
    };
    if (o.metadata === undefined || o.metadata === null) delete stored.metadata;
    for (const e of stored.extents) this.segmentRefs.set(e.segment, (this.segmentRefs.get(e.segment) ?? 0) + 1);
    const old = bucket.objects.get(name);
    bucket.objects.set(name, stored);
    if (old) this.release(old.extents);
    return stored;
  }

  private nextGeneration(): number {
    this.lastGeneration = Math.max(this.lastGeneration + 1, Date.now() * 1000);
    return this.lastGeneration;
  }

  // ---------------------------------------------------------------- data

  private newSegment(): string {
    return `seg-${randomUUID()}`;
  }

  private writeSegment(data: Buffer): { segment: string; size: number; crc32c: number; md5: string } {
    const segment = this.newSegment();
    const fd = openSync(join(this.dataDir, segment), 'w');
    writeAll(fd, data, 0);
    closeSync(fd);
    return { segment, size: data.length, crc32c: crc32cUpdate(0, data), md5: createHash('md5').update(data).digest('base64') };
  }

  private async receiveToSegment(req: IncomingMessage, io: BodyFaults): Promise<{ segment: string; size: number; crc32c: number; md5: string }> {
    const segment = this.newSegment();
    const fd = openSync(join(this.dataDir, segment), 'w');
    let size = 0;
    let crc = 0;
    const md5 = createHash('md5');
    try {
      const complete = await consumeBody(req, io, (chunk) => {
        writeAll(fd, chunk, size);
        size += chunk.length;
        crc = crc32cUpdate(crc, chunk);
        md5.update(chunk);
      });
      if (!complete) throw new HttpError(400, 'connection reset during upload', 'aborted');
    } catch (e) {
      closeSync(fd);
      this.dropSegmentFile(segment);
      throw e;
    }
    closeSync(fd);
    return { segment, size, crc32c: crc, md5: md5.digest('base64') };
  }

  private release(extents: Extent[]): void {
    for (const e of extents) {
      const n = (this.segmentRefs.get(e.segment) ?? 1) - 1;
      if (n <= 0) {
        this.segmentRefs.delete(e.segment);
        this.dropSegmentFile(e.segment);
      } else this.segmentRefs.set(e.segment, n);
    }
  }

  private dropSegmentFile(segment: string): void {
    if (this.segmentRefs.has(segment)) return;
    try {
      unlinkSync(join(this.dataDir, segment));
    } catch {
      /* already gone */
    }
  }

  private async *extentStream(extents: Extent[], from: number, to: number): AsyncGenerator<Buffer> {
    let pos = 0;
    for (const e of extents) {
      const a = Math.max(from, pos);
      const b = Math.min(to, pos + e.length);
      if (a < b) {
        for await (const c of createReadStream(join(this.dataDir, e.segment), { start: e.offset + (a - pos), end: e.offset + (b - pos) - 1, highWaterMark: 1 << 20 })) {
          yield c as Buffer;
        }
      }
      pos += e.length;
      if (pos >= to) break;
    }
  }

  private async sendMedia(req: IncomingMessage, res: ServerResponse, o: StoredObject, io: BodyFaults): Promise<void> {
    req.resume();
    let from = 0;
    let to = o.size;
    const range = req.headers.range;
    let status = 200;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (!m || (m[1] === '' && m[2] === '')) throw new HttpError(416, `Invalid range ${range}`, 'requestedRangeNotSatisfiable');
      if (m[1] === '') from = Math.max(0, o.size - Number(m[2]));
      else {
        from = Number(m[1]);
        to = m[2] === '' ? o.size : Math.min(o.size, Number(m[2]) + 1);
      }
      if (from >= o.size && o.size > 0) throw new HttpError(416, 'The requested range cannot be satisfied.', 'requestedRangeNotSatisfiable');
      status = 206;
      res.setHeader('Content-Range', `bytes ${from}-${to - 1}/${o.size}`);
    }
    res.writeHead(status, {
      'Content-Type': o.contentType,
      'Content-Length': String(to - from),
      'x-goog-hash': [`crc32c=${crc32cToBase64(o.crc32c)}`, ...(o.md5 ? [`md5=${o.md5}`] : [])].join(','),
      'x-goog-generation': String(o.generation),
      'x-goog-metageneration': String(o.metageneration),
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': String(o.size),
      'Accept-Ranges': 'bytes',
      ETag: `"${o.generation}"`,
    });
    let sent = 0;
    for await (const chunk of this.extentStream(o.extents, from, to)) {
      let c = chunk;
      if (io.corruptAt !== undefined && io.corruptAt >= sent && io.corruptAt < sent + c.length) {
        c = Buffer.from(c);
        c[io.corruptAt - sent] ^= 0xff;
      }
      if (io.resetAfter !== undefined && sent + c.length > io.resetAfter) {
        res.write(c.subarray(0, Math.max(0, io.resetAfter - sent)));
        res.socket?.destroy();
        return;
      }
      sent += c.length;
      if (!res.write(c)) await once(res, 'drain');
    }
    res.end();
  }

  private resource(o: StoredObject): Record<string, unknown> {
    const enc = encodeURIComponent(o.name);
    return {
      kind: 'storage#object',
      id: `${o.bucket}/${o.name}/${o.generation}`,
      selfLink: `${this.endpoint}/storage/v1/b/${o.bucket}/o/${enc}`,
      mediaLink: `${this.endpoint}/download/storage/v1/b/${o.bucket}/o/${enc}?generation=${o.generation}&alt=media`,
      name: o.name,
      bucket: o.bucket,
      generation: String(o.generation),
      metageneration: String(o.metageneration),
      contentType: o.contentType,
      storageClass: 'STANDARD',
      size: String(o.size),
      crc32c: crc32cToBase64(o.crc32c),
      ...(o.md5 ? { md5Hash: o.md5 } : {}),
      ...(o.componentCount ? { componentCount: o.componentCount } : {}),
      ...(o.metadata ? { metadata: o.metadata } : {}),
      ...(o.cacheControl ? { cacheControl: o.cacheControl } : {}),
      ...(o.contentDisposition ? { contentDisposition: o.contentDisposition } : {}),
      etag: `C${o.generation}`,
      timeCreated: o.timeCreated,
      updated: o.updated,
    };
  }

  private bucketResource(b: BucketState): Record<string, unknown> {
    return {
      kind: 'storage#bucket',
      id: b.name,
      name: b.name,
      location: 'US',
      storageClass: 'STANDARD',
      timeCreated: b.timeCreated,
      iamConfiguration: { uniformBucketLevelAccess: { enabled: b.uniformAccess } },
    };
  }

  private sendError(res: ServerResponse, e: HttpError): void {
    sendJson(res, e.status, { error: { code: e.status, message: e.message, errors: [{ message: e.message, domain: 'global', reason: e.reason }] } });
  }
}

// ------------------------------------------------------------------ HTTP helpers

interface BodyFaults {
  record: EmulatorRequestRecord;
  emulator: GcsEmulator;
  resetAfter?: number;
  corruptAt?: number;
  bytesPerSecond?: number;
}

function preconditionFailed(): HttpError {
  return new HttpError(412, 'At least one of the pre-conditions you specified did not hold.', 'conditionNotMet');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'Content-Length': '0' });
  res.end();
}

function sendIncomplete(res: ServerResponse, offset: number): void {
  const headers: Record<string, string> = { 'Content-Length': '0' };
  if (offset > 0) headers.Range = `bytes=0-${offset - 1}`;
  res.writeHead(308, headers);
  res.end();
}

function writeAll(fd: number, data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

/**
 * Feeds the request body to `onChunk`, applying the request's faults: a flipped byte at `corruptAt`, a
 * connection reset after `resetAfter` bytes. Returns false when the body ended early (reset or client abort).
 */
async function consumeBody(req: IncomingMessage, io: BodyFaults, onChunk: (chunk: Buffer) => void): Promise<boolean> {
  let seen = 0;
  const isUpload = req.url?.startsWith('/upload/') ?? false;
  const started = performance.now();
  try {
    for await (const raw of req) {
      if (io.bytesPerSecond) {
        const due = started + (1000 * seen) / io.bytesPerSecond;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      }
      let chunk = raw as Buffer;
      if (io.corruptAt !== undefined && io.corruptAt >= seen && io.corruptAt < seen + chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[io.corruptAt - seen] ^= 0xff;
      }
      if (io.resetAfter !== undefined && seen + chunk.length >= io.resetAfter) {
        const keep = chunk.subarray(0, io.resetAfter - seen);
        seen += keep.length;
        io.record.bodyBytes = seen;
        if (isUpload) io.emulator.uploadedBytes += keep.length;
        if (keep.length > 0) onChunk(keep);
        req.socket.destroy();
        return false;
      }
      seen += chunk.length;
      io.record.bodyBytes = seen;
      if (isUpload) io.emulator.uploadedBytes += chunk.length;
      onChunk(chunk);
    }
  } catch {
    return false;
  }
  return req.complete;
}

/**
 * Reusable buffers for request bodies that must be held whole (multipart uploads of up to a part's size).
 * A fresh 16 MiB buffer per request costs more than the copy into it on this machine (first-touch page
 * faults, and Buffer.concat's allocation), and the emulator shares the cores with the client it measures.
 */
class ScratchPool {
  private readonly free: Buffer[] = [];
  acquire(atLeast: number): Buffer {
    const i = this.free.findIndex((b) => b.length >= atLeast);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    return Buffer.allocUnsafeSlow(Math.max(atLeast, 1 << 20));
  }
  release(b: Buffer): void {
    if (this.free.length < 16) this.free.push(b);
  }
}

/** Reads a whole body into a pooled buffer (grown by doubling); give `buffer` back with pool.release(). */
async function readBodyInto(req: IncomingMessage, io: BodyFaults, pool: ScratchPool): Promise<{ body: Buffer; buffer: Buffer }> {
  const declared = Number(req.headers['content-length'] ?? 0);
  let buffer = pool.acquire(Number.isSafeInteger(declared) && declared > 0 ? declared : 1 << 20);
  let length = 0;
  let complete: boolean;
  try {
    complete = await consumeBody(req, io, (c) => {
      if (length + c.length > buffer.length) {
        const bigger = pool.acquire(Math.max(2 * buffer.length, length + c.length));
        buffer.copy(bigger, 0, 0, length);
        pool.release(buffer);
        buffer = bigger;
      }
      c.copy(buffer, length);
      length += c.length;
    });
  } catch (e) {
    pool.release(buffer);
    throw e;
  }
  if (!complete) {
    pool.release(buffer);
    throw new HttpError(400, 'connection reset during the request body', 'aborted');
  }
  return { body: buffer.subarray(0, length), buffer };
}

async function readBody(req: IncomingMessage, io: BodyFaults): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const complete = await consumeBody(req, io, (c) => chunks.push(c));
  if (!complete) throw new HttpError(400, 'connection reset during the request body', 'aborted');
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage, io: BodyFaults): Promise<unknown> {
  const body = await readBody(req, io);
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'Parse Error: the request body is not JSON', 'parseError');
  }
}

/** Splits a multipart/related body into its parts (headers lower-cased). */
function splitMultipart(body: Buffer, boundary: string): { headers: Record<string, string>; body: Buffer }[] {
  const delim = Buffer.from(`--${boundary}`);
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    let start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    if (body.subarray(start, start + 2).toString() === '\r\n') start += 2;
    const next = body.indexOf(delim, start);
    if (next < 0) break;
    let end = next;
    if (body.subarray(end - 2, end).toString() === '\r\n') end -= 2;
    const part = body.subarray(start, end);
    const sep = part.indexOf('\r\n\r\n');
    const headerText = sep >= 0 ? part.subarray(0, sep).toString('utf8') : '';
    const headers: Record<string, string> = {};
    for (const line of headerText.split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    parts.push({ headers, body: sep >= 0 ? part.subarray(sep + 4) : part });
    pos = next;
  }
  return parts;
}

/** Rejects an upload whose client-declared CRC32C or MD5 (metadata or X-Goog-Hash) differs from the data. */
function checkClientHashes(xGoogHash: string | string[] | undefined, resource: Record<string, unknown>, crc: number, md5: string): void {
  const declared: { crc32c?: string; md5?: string } = {};
  if (typeof resource.crc32c === 'string') declared.crc32c = resource.crc32c;
  if (typeof resource.md5Hash === 'string') declared.md5 = resource.md5Hash;
  for (const item of String(xGoogHash ?? '').split(',')) {
    const i = item.indexOf('=');
    if (i < 0) continue;
    const k = item.slice(0, i).trim();
    const v = item.slice(i + 1).trim();
    if (k === 'crc32c') declared.crc32c = v;
    if (k === 'md5') declared.md5 = v;
  }
  if (declared.crc32c !== undefined && crc32cFromBase64(declared.crc32c) !== crc) {
    throw new HttpError(400, `Provided CRC32C "${declared.crc32c}" doesn't match calculated CRC32C "${crc32cToBase64(crc)}".`, 'invalid');
  }
  if (declared.md5 !== undefined && declared.md5 !== md5) {
    throw new HttpError(400, `Provided MD5 hash "${declared.md5}" doesn't match calculated MD5 hash "${md5}".`, 'invalid');
  }
}
