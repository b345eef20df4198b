/**
 * A remote shell session over SSH (ssh2): connect with retries, run commands with their output streamed
 * live and their exit code returned, write files (as root through `sudo tee` when asked).
 *
 * Built for freshly booted VMs: QEMU's user-mode network accepts the TCP connection on the forwarded port
 * long before the guest's sshd listens, so a connection attempt can hang instead of failing. Every attempt
 * therefore has its own timeout, and attempts repeat until an overall deadline.
 *
 * Secrets: the private key is passed to ssh2 in memory; it never appears in a process's argv, a log line or
 * a file written by this module. Command text is logged by callers, so never put secrets in commands; pass
 * them on stdin ({@link ExecOptions.stdin}) instead.
 */
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { createHash } from 'node:crypto';
import { shellQuote } from './escape.js';

/** Where and as whom to log in. */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** The private key (OpenSSH or PEM text). */
  privateKey: string | Buffer;
  /** Passphrase of an encrypted private key. */
  passphrase?: string;
  /** The host key's SHA256 fingerprint (`SHA256:…`, as ssh-keygen -lf prints it): any other key is refused. */
  expectedHostKey?: string;
}

/** The server's host key is not the expected one (never retried: it will not change). */
export class HostKeyMismatchError extends Error {}

export interface ConnectOptions extends SshTarget {
  /** Give up after this long in total (default 5 minutes). */
  timeoutMs?: number;
  /** Each attempt (TCP + banner + key exchange + auth) must finish within this (default 15 s). */
  attemptTimeoutMs?: number;
  /** Pause between failed attempts (default 2 s). */
  retryDelayMs?: number;
  /** Cancels the wait. */
  signal?: AbortSignal;
  /** Called after every failed attempt (for progress lines). */
  onAttemptFailed?: (attempt: number, error: Error, elapsedMs: number) => void;
  /**
   * Give up after this many refusals of the key (default 3: a key the server refuses will not start working).
   * A guest whose key arrives during boot (cloud-init authorizes it from a seed, after sshd may already
   * answer) refuses it at first: pass Infinity there, and the overall timeout bounds the wait.
   */
  refusedKeyAttempts?: number;
}

/** SSH did not come up before the deadline; `lastError` is the last attempt's failure. */
export class SshConnectTimeoutError extends Error {
  constructor(
    readonly target: string,
    readonly attempts: number,
    readonly elapsedMs: number,
    readonly lastError: Error | undefined,
  ) {
    super(`SSH to ${target} did not come up within ${Math.round(elapsedMs / 1000)} s (${attempts} attempts; last: ${lastError?.message ?? 'none'})`);
    this.name = 'SshConnectTimeoutError';
  }
}

/** A remote command ran past its timeout; it was sent SIGKILL and its channel closed. */
export class ExecTimeoutError extends Error {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
    readonly output: string,
  ) {
    super(`'${command}' did not finish within ${Math.round(timeoutMs / 1000)} s`);
    this.name = 'ExecTimeoutError';
  }
}

/** The operation was cancelled through its AbortSignal. */
export class CancelledError extends Error {
  constructor(what: string) {
    super(`${what} was cancelled`);
    this.name = 'CancelledError';
  }
}

export interface ExecOptions {
  /** Called with every complete line of output (stdout and stderr interleaved as they arrive). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Bytes written to the command's stdin, which is then closed. */
  stdin?: string | Buffer;
  /** Kill the command after this long (default: no limit). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Keep at most this many characters of each stream in the result (the tail; default 256 KiB). */
  keepChars?: number;
}

export interface ExecResult {
  command: string;
  /** The exit code; null when the command died of a signal or the session closed first. */
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** POSIX shell quoting, for paths put into a remote command line (the project's one helper, from ./escape.ts). */
export { shellQuote };

function abortError(signal: AbortSignal | undefined, what: string): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new CancelledError(what);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal, 'the wait'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal, 'the wait'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** A logged-in SSH session. Close it with {@link RemoteSession.close}. */
export class RemoteSession {
  /** SHA-256 fingerprint of the host key the server presented (base64, like `ssh-keygen -l`). */
  readonly hostKeyFingerprint: string;

  constructor(
    private readonly client: Client,
    readonly target: string,
    hostKeyFingerprint: string,
  ) {
    this.hostKeyFingerprint = hostKeyFingerprint;
  }

  /**
   * Runs a command through the remote user's shell. Resolves with the exit code (it does not reject on a
   * non-zero exit); rejects on timeout ({@link ExecTimeoutError}), cancellation or a broken connection.
   */
  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const { onLine, stdin, timeoutMs, signal, keepChars = 256 * 1024 } = options;
    const started = Date.now();
    return new Promise<ExecResult>((resolve, reject) => {
      if (signal?.aborted) return reject(abortError(signal, `'${command}'`));
      this.client.exec(command, (err, channel: ClientChannel) => {
        if (err) return reject(new Error(`cannot start '${command}' on ${this.target}: ${err.message}`));
        const out = { stdout: '', stderr: '' };
        const partial = { stdout: '', stderr: '' };
        let settled = false;
        let timer: NodeJS.Timeout | undefined;
        const keep = (which: 'stdout' | 'stderr', text: string) => {
          out[which] += text;
          if (out[which].length > keepChars) out[which] = out[which].slice(-keepChars);
          if (!onLine) return;
          const lines = (partial[which] + text).split(/\r?\n/);
          partial[which] = lines.pop() ?? '';
          for (const line of lines) onLine(line, which);
        };
        const flush = () => {
          for (const which of ['stdout', 'stderr'] as const) {
            if (onLine && partial[which] !== '') onLine(partial[which], which);
            partial[which] = '';
          }
        };
        const finish = (error: Error | undefined, code: number | null, sig?: string) => {
          if (settled) return;
          settled = true;
          if (timer) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          flush();
          if (error) return reject(error);
          resolve({ command, code, ...(sig ? { signal: sig } : {}), stdout: out.stdout, stderr: out.stderr, durationMs: Date.now() - started });
        };
        const stop = () => {
          try {
            channel.signal('KILL');
          } catch {
            /* the server may not support signals; closing the channel ends it anyway */
          }
          channel.close();
        };
        const onAbort = () => {
          stop();
          finish(abortError(signal, `'${command}'`), null);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => {
            stop();
            finish(new ExecTimeoutError(command, timeoutMs, (out.stdout + out.stderr).slice(-4000)), null);
          }, timeoutMs);
        }
        channel.on('data', (d: Buffer) => keep('stdout', d.toString('utf8')));
        channel.stderr.on('data', (d: Buffer) => keep('stderr', d.toString('utf8')));
        let exitCode: number | null = null;
        let exitSignal: string | undefined;
        channel.on('exit', (code: number | null, sig?: string) => {
          exitCode = code ?? null;
          exitSignal = sig ?? undefined;
        });
        channel.on('close', () => finish(undefined, exitCode, exitSignal));
        channel.on('error', (e: Error) => finish(new Error(`'${command}' on ${this.target}: ${e.message}`), null));
        if (stdin !== undefined) channel.end(stdin);
        else channel.end();
      });
    });
  }

  /**
   * Writes `content` to `path` on the remote machine. With `sudo`, through `sudo tee` (the remote user
   * needs passwordless sudo); the parent directory is created. The content travels on stdin, never in argv.
   */
  async writeFile(path: string, content: string | Buffer, options: { sudo?: boolean; mode?: string; timeoutMs?: number } = {}): Promise<void> {
    const { sudo = false, mode = '0644', timeoutMs = 60_000 } = options;
    if (!/^[0-7]{3,4}$/.test(mode)) throw new Error(`writeFile: mode '${mode}' is not an octal mode such as 0644`);
    const p = shellQuote(path);
    const dir = shellQuote(path.replace(/\/[^/]*$/, '') || '/');
    const s = sudo ? 'sudo -n ' : '';
    // Write a temporary file and rename it, so that a reader never sees half a file.
    const tmp = shellQuote(`${path}.labforge-tmp`);
    const cmd = `set -e; ${s}mkdir -p ${dir}; ${s}tee ${tmp} >/dev/null; ${s}chmod ${mode} ${tmp}; ${s}mv -f ${tmp} ${p}`;
    const r = await this.exec(cmd, { stdin: content, timeoutMs });
    if (r.code !== 0) throw new Error(`cannot write ${path} on ${this.target} (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }

  /** Reads a remote file (through `sudo cat` when asked). */
  async readFile(path: string, options: { sudo?: boolean; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(`${options.sudo ? 'sudo -n ' : ''}cat ${shellQuote(path)}`, { timeoutMs: options.timeoutMs ?? 60_000 });
    if (r.code !== 0) throw new Error(`cannot read ${path} on ${this.target} (exit ${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Ends the session. Safe to call more than once. */
  close(): void {
    this.client.end();
  }

  /** Resolves when the connection is gone (e.g. after the remote machine powered off). */
  closed(): Promise<void> {
    return new Promise((resolve) => {
      this.client.once('close', () => resolve());
    });
  }
}

/** One connection attempt with its own deadline. */
function connectOnce(target: SshTarget, attemptTimeoutMs: number, signal?: AbortSignal): Promise<RemoteSession> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let fingerprint = '';
    let mismatch: HostKeyMismatchError | undefined;
    let settled = false;
    const done = (error?: Error) => {
      if (settled) return;
      settled = true;
      const err = error && mismatch ? mismatch : error;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        client.removeAllListeners('ready');
        client.on('error', () => undefined);
        client.end();
        client.destroy();
        reject(err);
      } else {
        resolve(new RemoteSession(client, `${target.username}@${target.host}:${target.port}`, fingerprint));
      }
    };
    const onAbort = () => done(abortError(signal, 'connecting over SSH'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => done(new Error(`attempt timed out after ${Math.round(attemptTimeoutMs / 1000)} s (TCP accepted but no SSH login)`)), attemptTimeoutMs);
    client.on('ready', () => done());
    client.on('error', (e: Error) => done(e));
    client.on('close', () => done(new Error('connection closed before login')));
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      ...(target.passphrase ? { passphrase: target.passphrase } : {}),
      readyTimeout: attemptTimeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 8,
      // A freshly built VM has a fresh host key: there is nothing to pin it to unless the caller knows it.
      // Record its fingerprint; refuse any other key than an expected one.
      hostVerifier: (key: Buffer) => {
        fingerprint = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
        if (target.expectedHostKey && fingerprint !== target.expectedHostKey) {
          mismatch = new HostKeyMismatchError(`the host key of ${target.host}:${target.port} is ${fingerprint}, not the expected ${target.expectedHostKey}`);
          return false;
        }
        return true;
      },
    };
    client.connect(config);
  });
}

/** Connects, retrying until the overall deadline; every attempt has its own timeout. */
export async function connectSsh(options: ConnectOptions): Promise<RemoteSession> {
  const { timeoutMs = 300_000, attemptTimeoutMs = 15_000, retryDelayMs = 2_000, signal, onAttemptFailed, refusedKeyAttempts = 3 } = options;
  const started = Date.now();
  let attempts = 0;
  let lastError: Error | undefined;
  const target = `${options.username}@${options.host}:${options.port}`;
  for (;;) {
    if (signal?.aborted) throw abortError(signal, 'connecting over SSH');
    const remaining = timeoutMs - (Date.now() - started);
    if (remaining <= 0) throw new SshConnectTimeoutError(target, attempts, Date.now() - started, lastError);
    attempts++;
    try {
      return await connectOnce(options, Math.min(attemptTimeoutMs, Math.max(remaining, 1_000)), signal);
    } catch (e) {
      if (signal?.aborted) throw abortError(signal, 'connecting over SSH');
      if (e instanceof HostKeyMismatchError) throw new Error(`SSH to ${target}: ${e.message}; refusing to log in`, { cause: e });
      lastError = e as Error;
      // A key the server refuses will not start working: stop early instead of retrying for minutes.
      if (/All configured authentication methods failed/i.test(lastError.message) && attempts >= refusedKeyAttempts) {
        throw new Error(`SSH to ${target}: the server refused the key for user ${options.username} (${attempts} attempts); check ssh-user and the key`, { cause: e });
      }
      if (/Cannot parse privateKey|Unsupported key format|Encrypted private OpenSSH key/i.test(lastError.message)) {
        throw new Error(`SSH to ${target}: the private key cannot be used (${lastError.message})`, { cause: e });
      }
      onAttemptFailed?.(attempts, lastError, Date.now() - started);
      await sleep(Math.min(retryDelayMs, Math.max(0, timeoutMs - (Date.now() - started))), signal);
    }
  }
}
