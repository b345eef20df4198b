/**
 * The SSH layers above the banner, probed with one ssh2 connection: key exchange (with both sides' offered
 * algorithms), the host key, the `none` method (which makes the server list the methods it allows), each
 * credential in turn, then a command and `sudo -n true`.
 *
 * ssh2 does not expose everything a diagnosis needs, so this module reads two things that it does not
 * publish: the algorithm lists each side offered (from ssh2's `debug` lines, "Handshake: (remote) KEX
 * method: …"), and the server's `server-sig-algs` extension (by wrapping the connection's EXT_INFO
 * handler; rewriting that list is also how a single RSA signature algorithm is chosen for a probe). Both
 * are checked against ssh2 1.17; if they change, the report just lacks those fields.
 */
import { Client, type ClientChannel, type ConnectConfig, type ParsedKey } from 'ssh2';
import { createHash } from 'node:crypto';

/** Algorithm lists per category, as a side offered them. */
export interface AlgorithmLists {
  kex?: string[];
  hostKey?: string[];
  cipher?: string[];
  mac?: string[];
  compression?: string[];
}

export type AuthMethod = 'none' | 'publickey' | 'password' | 'keyboard-interactive';

export interface AuthAttempt {
  method: AuthMethod;
  /** For publickey: the signature algorithm used (rsa-sha2-256, ssh-ed25519, …). */
  keyAlgorithm?: string;
  /**
   * accepted: logged in. rejected: the server refused it. not-offered: the server does not allow the method.
   * algorithm-not-advertised: the server's server-sig-algs has no algorithm this key can sign with.
   */
  result: 'accepted' | 'rejected' | 'not-offered' | 'algorithm-not-advertised';
  durationMs: number;
}

export interface RemoteRun {
  command: string;
  exitCode?: number;
  signal?: string;
  /** Last 2 KiB of each stream. */
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export interface SessionProbeOptions {
  host: string;
  port: number;
  username: string;
  password?: string;
  /** A parsed private key (ssh2 `utils.parseKey`). */
  privateKey?: ParsedKey;
  /** The key text as given (ssh2 parses it again; kept to pass the passphrase along). */
  privateKeyText?: string;
  passphrase?: string;
  /** `SHA256:…`; the connection is refused when the server's key differs. */
  expectedHostKey?: string;
  /** Applies to the handshake + authentication, and separately to the command and to sudo. */
  timeoutMs: number;
  /** Command to run after login (undefined: stop after authentication). */
  command?: string;
  checkSudo: boolean;
  /** Only try publickey (used to probe one RSA signature algorithm at a time). */
  publickeyOnly?: boolean;
  /** Replace the server's server-sig-algs with this list, so ssh2 signs RSA with the first it supports. */
  signatureAlgorithms?: string[];
}

export interface SessionProbeResult {
  /** The last layer reached: kex (failed there), auth, command, sudo, done. */
  reached: 'kex' | 'host-key' | 'auth' | 'command' | 'sudo' | 'done';
  /** Set when a layer failed outside authentication (authentication is judged by the caller from `auth`). */
  failure?: 'kex-mismatch' | 'handshake-timeout' | 'host-key-mismatch' | 'connection-closed' | 'auth-timeout';
  /** ssh2's error message, if any. */
  error?: string;
  /** Which category had no match in a kex-mismatch (kex, host key, cipher, mac, compression). */
  mismatch?: keyof AlgorithmLists;
  client: AlgorithmLists;
  server: AlgorithmLists;
  negotiated?: { kex: string; hostKey: string; cipher: string; mac: string };
  hostKey?: { algorithm: string; sha256: string; expected?: string; matches?: boolean };
  serverSigAlgs?: string[];
  /** The server's pre-login banner (USERAUTH_BANNER), if it sent one. */
  authBanner?: string;
  /** Methods the server allows, as it answered the `none` request. */
  allowedMethods?: string[];
  auth: AuthAttempt[];
  loggedIn: boolean;
  command?: RemoteRun;
  sudo?: RemoteRun;
  kexMs?: number;
  authMs?: number;
  /** A server DISCONNECT reason, e.g. "Too many authentication failures". */
  disconnect?: string;
}

/** `SHA256:` fingerprint of an SSH public key blob, as OpenSSH prints it. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The algorithm name at the start of an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
export function keyBlobAlgorithm(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

const DEBUG_LISTS: [RegExp, keyof AlgorithmLists][] = [
  [/^Handshake: \((local|remote)\) KEX method: (.*)$/, 'kex'],
  [/^Handshake: \((local|remote)\) Host key format: (.*)$/, 'hostKey'],
  [/^Handshake: \((local|remote)\) C->S cipher: (.*)$/, 'cipher'],
  [/^Handshake: \((local|remote)\) C->S MAC: (.*)$/, 'mac'],
  [/^Handshake: \((local|remote)\) C->S compression: (.*)$/, 'compression'],
];
const MISMATCH: [RegExp, keyof AlgorithmLists][] = [
  [/no matching key exchange/i, 'kex'],
  [/no matching host key/i, 'hostKey'],
  [/no matching .*cipher/i, 'cipher'],
  [/no matching .*MAC/i, 'mac'],
  [/no matching .*compression/i, 'compression'],
];

function tail(text: string, max = 2048): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/** ssh2's connection internals that the probe reads (see the module comment). */
interface Ssh2Internals {
  _protocol?: { _handlers?: { EXT_INFO?: (p: unknown, exts: { name: string; algs?: string[] }[]) => void } };
}

/** Runs one command on a logged-in connection, with a timeout. */
function runRemote(client: Client, command: string, timeoutMs: number): Promise<RemoteRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    const run: RemoteRun = { command, stdout: '', stderr: '', durationMs: 0, timedOut: false };
    let channel: ClientChannel | undefined;
    const done = () => {
      clearTimeout(timer);
      run.durationMs = Math.round(performance.now() - started);
      run.stdout = tail(run.stdout);
      run.stderr = tail(run.stderr);
      resolve(run);
    };
    const timer = setTimeout(() => {
      run.timedOut = true;
      channel?.close();
      done();
    }, timeoutMs);
    client.exec(command, (err, stream) => {
      if (err) {
        run.stderr = `cannot start the command: ${err.message}`;
        return done();
      }
      channel = stream;
      stream.on('data', (d: Buffer) => (run.stdout = tail(run.stdout + d.toString('utf8'), 8192)));
      stream.stderr.on('data', (d: Buffer) => (run.stderr = tail(run.stderr + d.toString('utf8'), 8192)));
      stream.on('exit', (code: number | null, signal?: string) => {
        if (typeof code === 'number') run.exitCode = code;
        if (signal) run.signal = signal;
      });
      stream.on('close', () => {
        if (!run.timedOut) done();
      });
    });
  });
}

/** Probes key exchange, host key, authentication, command and sudo over one ssh2 connection. Never throws. */
export async function probeSshSession(opts: SessionProbeOptions): Promise<SessionProbeResult> {
  const result: SessionProbeResult = { reached: 'kex', client: {}, server: {}, auth: [], loggedIn: false };
  const started = performance.now();
  let kexDoneAt: number | undefined;
  let hostKeyRejected = false;
  let noMutualKeyAlgorithm = false;

  // The plan of credentials, built once the `none` request has revealed the allowed methods.
  let plan: AuthAttempt['method'][] | undefined;
  let current: { attempt: AuthAttempt; startedAt: number } | undefined;

  const client = new Client();
  const debug = (line: string) => {
    for (const [re, key] of DEBUG_LISTS) {
      const m = re.exec(line);
      if (m) (m[1] === 'local' ? result.client : result.server)[key] = (m[2] ?? '').split(',').filter((a) => a !== '');
    }
    for (const [re, key] of MISMATCH) if (re.test(line)) result.mismatch ??= key;
    if (/Skipping key authentication \(no mutual hash algorithm\)/.test(line)) noMutualKeyAlgorithm = true;
    const failedAlgo = /^Client: publickey \((\S+)\) auth failed/.exec(line);
    if (failedAlgo && current?.attempt.method === 'publickey') current.attempt.keyAlgorithm = failedAlgo[1];
  };

  const chosenKeyAlgorithm = (): string | undefined => {
    const key = opts.privateKey;
    if (!key) return undefined;
    if (key.type !== 'ssh-rsa') return key.type;
    const algs = opts.signatureAlgorithms ?? result.serverSigAlgs;
    if (!Array.isArray(algs)) return 'ssh-rsa';
    if (algs.includes('rsa-sha2-256')) return 'rsa-sha2-256';
    if (algs.includes('rsa-sha2-512')) return 'rsa-sha2-512';
    return algs.includes('ssh-rsa') ? 'ssh-rsa' : undefined;
  };

  const closeCurrent = (outcome: AuthAttempt['result']) => {
    if (!current) return;
    current.attempt.result = outcome;
    current.attempt.durationMs = Math.round(performance.now() - current.startedAt);
    result.auth.push(current.attempt);
    current = undefined;
  };

  const config: ConnectConfig = {
    host: opts.host,
    port: opts.port,
    username: opts.username,
    readyTimeout: opts.timeoutMs,
    keepaliveInterval: 0,
    debug,
    hostVerifier: (key: Buffer) => {
      const sha256 = sshFingerprint(key);
      const expected = opts.expectedHostKey;
      const matches = expected === undefined ? undefined : sha256 === expected;
      result.hostKey = { algorithm: keyBlobAlgorithm(key), sha256, ...(expected !== undefined ? { expected, matches } : {}) };
      if (matches === false) hostKeyRejected = true;
      return matches !== false;
    },
    authHandler: (methodsLeft, _partial, next) => {
      if (kexDoneAt !== undefined && result.reached === 'kex') result.reached = 'auth';
      if (methodsLeft === null || methodsLeft === undefined) {
        current = { attempt: { method: 'none', result: 'rejected', durationMs: 0 }, startedAt: performance.now() };
        return next({ type: 'none', username: opts.username });
      }
      if (current?.attempt.method === 'none') result.allowedMethods = [...methodsLeft];
      if (current?.attempt.method === 'publickey' && noMutualKeyAlgorithm) {
        noMutualKeyAlgorithm = false;
        closeCurrent('algorithm-not-advertised');
      } else {
        closeCurrent('rejected');
      }
      if (plan === undefined) {
        plan = [];
        const allowed = result.allowedMethods ?? [...methodsLeft];
        const notOffered = (method: AuthMethod) => result.auth.push({ method, result: 'not-offered', durationMs: 0 });
        if (opts.privateKey) {
          if (allowed.includes('publickey')) plan.push('publickey');
          else notOffered('publickey');
        }
        if (opts.password !== undefined && !opts.publickeyOnly) {
          const pw = allowed.includes('password');
          const kbd = allowed.includes('keyboard-interactive');
          if (pw) plan.push('password');
          if (kbd) plan.push('keyboard-interactive');
          if (!pw && !kbd) notOffered('password');
        }
      }
      const method = plan.shift();
      if (method === undefined) return next(false as never);
      const attempt: AuthAttempt = { method, result: 'rejected', durationMs: 0 };
      current = { attempt, startedAt: performance.now() };
      if (method === 'publickey') {
        attempt.keyAlgorithm = chosenKeyAlgorithm();
        return next({ type: 'publickey', username: opts.username, key: opts.privateKeyText ?? '', passphrase: opts.passphrase } as never);
      }
      if (method === 'password') return next({ type: 'password', username: opts.username, password: opts.password ?? '' });
      return next({
        type: 'keyboard-interactive',
        username: opts.username,
        // Packer answers every prompt with the password; so does the probe.
        prompt: (_name: string, _instructions: string, _lang: string, prompts: unknown[], finish: (answers: string[]) => void) =>
          finish(prompts.map(() => opts.password ?? '')),
      } as never);
    },
  };

  return new Promise((resolve) => {
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      if (current) closeCurrent('rejected');
      client.removeAllListeners('ready');
      client.on('error', () => undefined); // late errors after the verdict are irrelevant
      client.end();
      resolve(result);
    };

    client.on('handshake', (negotiated) => {
      kexDoneAt = performance.now();
      result.kexMs = Math.round(kexDoneAt - started);
      result.negotiated = { kex: negotiated.kex, hostKey: negotiated.serverHostKey, cipher: negotiated.cs.cipher, mac: negotiated.cs.mac || '(implicit, AEAD)' };
      if (result.reached === 'kex') result.reached = 'host-key';
    });
    client.on('banner', (message: string) => (result.authBanner = tail(message, 1024)));
    client.on('error', (err: Error & { level?: string; code?: unknown }) => {
      result.error = err.message;
      if (hostKeyRejected) {
        result.failure = 'host-key-mismatch';
        result.reached = 'host-key';
      } else if (result.mismatch || /no matching/i.test(err.message)) {
        result.failure = 'kex-mismatch';
        result.reached = 'kex';
      } else if (err.level === 'client-timeout') {
        result.failure = kexDoneAt === undefined ? 'handshake-timeout' : 'auth-timeout';
      } else if (err.level === 'client-authentication') {
        // judged by the caller from result.auth
      } else if (typeof err.code === 'number') {
        result.disconnect = err.message;
      } else if (kexDoneAt === undefined) {
        result.failure = 'connection-closed';
      }
      finish();
    });
    client.on('close', finish);
    client.on('ready', async () => {
      closeCurrent('accepted');
      result.loggedIn = true;
      result.authMs = Math.round(performance.now() - (kexDoneAt ?? started));
      if (opts.command !== undefined && !opts.publickeyOnly) {
        result.reached = 'command';
        result.command = await runRemote(client, opts.command, opts.timeoutMs);
        if (result.command.exitCode === 0 && opts.checkSudo) {
          result.reached = 'sudo';
          result.sudo = await runRemote(client, 'sudo -n true', opts.timeoutMs);
        }
        if (result.command.exitCode === 0 && (!opts.checkSudo || result.sudo?.exitCode === 0)) result.reached = 'done';
      } else {
        result.reached = 'done';
      }
      finish();
    });

    try {
      client.connect(config);
    } catch (e) {
      result.error = (e as Error).message;
      result.failure = 'connection-closed';
      finish();
      return;
    }
    // Record server-sig-algs, and optionally present a different list to ssh2 (see the module comment).
    const handlers = (client as unknown as Ssh2Internals)._protocol?._handlers;
    const original = handlers?.EXT_INFO;
    if (handlers && original) {
      handlers.EXT_INFO = (p, exts) => {
        const sigAlgs = exts.find((e) => e.name === 'server-sig-algs');
        if (sigAlgs?.algs) result.serverSigAlgs = [...sigAlgs.algs];
        if (opts.signatureAlgorithms) {
          const replaced = exts.filter((e) => e.name !== 'server-sig-algs');
          replaced.push({ name: 'server-sig-algs', algs: [...opts.signatureAlgorithms] });
          return original(p, replaced);
        }
        return original(p, exts);
      };
    }
  });
}
