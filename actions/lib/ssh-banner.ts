/**
 * The two lowest layers of an SSH connection, probed with a plain TCP socket: does the port accept a
 * connection, and does what answers speak SSH? Done without an SSH library so that "nothing listens",
 * "listens but says nothing" and "speaks HTTP/VNC/TLS" are told apart precisely.
 */
import { Socket } from 'node:net';
import type { SshCause } from './ssh-causes.js';

/** What a non-SSH service on the port appears to be. */
export type ForeignProtocol = 'http' | 'vnc' | 'tls' | 'smtp-or-ftp' | 'pop3' | 'imap' | 'unknown';

export interface TcpBannerResult {
  /** undefined when both layers passed; otherwise the cause found. */
  cause?: Extract<SshCause, 'host-not-found' | 'connection-refused' | 'connect-timeout' | 'host-unreachable' | 'connection-closed' | 'banner-timeout' | 'not-ssh'>;
  /** TCP connect time in ms (undefined when it never connected). */
  connectMs?: number;
  /** Time from connect to the first complete line, in ms. */
  bannerMs?: number;
  /** The SSH identification line (`SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10`). */
  banner?: string;
  /** Protocol and software version parsed from the banner. */
  protoVersion?: string;
  software?: string;
  /** For `not-ssh`: what the port speaks and the first bytes it sent (printable, escaped). */
  speaks?: ForeignProtocol;
  preview?: string;
  /** Socket error code, e.g. ECONNREFUSED. */
  errorCode?: string;
  /** One sentence for the report. */
  detail: string;
}

export interface TcpBannerOptions {
  host: string;
  port: number;
  /** Timeout for the TCP connect, and separately for the banner (ms). */
  timeoutMs: number;
  /** Identification sent to the server (an SSH client sends its own line first; an HTTP server answers it). */
  ident?: string;
}

const CONNECT_ERRORS: Record<string, NonNullable<TcpBannerResult['cause']>> = {
  ECONNREFUSED: 'connection-refused',
  EHOSTUNREACH: 'host-unreachable',
  ENETUNREACH: 'host-unreachable',
  EHOSTDOWN: 'host-unreachable',
  ENOTFOUND: 'host-not-found',
  EAI_AGAIN: 'host-not-found',
  EAI_NONAME: 'host-not-found',
  ETIMEDOUT: 'connect-timeout',
};

/** Maps a socket error code from connect() to a cause (undefined when it is not a connect-level error). */
export function connectErrorCause(code: string | undefined): TcpBannerResult['cause'] | undefined {
  return code === undefined ? undefined : CONNECT_ERRORS[code];
}

/** Names the protocol of a service from the first bytes it sent. */
export function identifyProtocol(data: Buffer): ForeignProtocol {
  const text = data.toString('latin1');
  if (/^HTTP\/\d/.test(text) || /^<(!doctype|html)/i.test(text)) return 'http';
  if (/^RFB \d{3}\.\d{3}/.test(text)) return 'vnc';
  if (data.length >= 2 && (data[0] === 0x15 || data[0] === 0x16) && data[1] === 0x03) return 'tls';
  if (/^220[ -]/.test(text)) return 'smtp-or-ftp';
  if (/^\+OK/.test(text)) return 'pop3';
  if (/^\* OK/.test(text)) return 'imap';
  return 'unknown';
}

function printable(data: Buffer, max = 80): string {
  return [...data.subarray(0, max)]
    .map((b) => (b === 0x0a ? '\\n' : b === 0x0d ? '\\r' : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`))
    .join('');
}

/**
 * Connects to host:port, sends an SSH identification line and reads the server's. Never throws: every
 * outcome is a {@link TcpBannerResult}.
 */
export async function probeTcpAndBanner(opts: TcpBannerOptions): Promise<TcpBannerResult> {
  const ident = opts.ident ?? 'SSH-2.0-labforge_ssh_diagnose';
  const where = `${opts.host}:${opts.port}`;
  return new Promise((resolve) => {
    const socket = new Socket();
    const started = performance.now();
    let connectedAt: number | undefined;
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (result: TcpBannerResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const connectMs = () => (connectedAt === undefined ? undefined : Math.round(connectedAt - started));
    const bannerMs = () => (connectedAt === undefined ? undefined : Math.round(performance.now() - connectedAt));
    let timer = setTimeout(() => {
      finish({ cause: 'connect-timeout', detail: `no answer to the TCP connection attempt to ${where} within ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);

    socket.on('connect', () => {
      connectedAt = performance.now();
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (received.length > 0) finishForeign(true);
        else finish({ cause: 'banner-timeout', connectMs: connectMs(), detail: `${where} accepted the TCP connection but sent nothing in ${opts.timeoutMs} ms` });
      }, opts.timeoutMs);
      socket.write(`${ident}\r\n`);
    });

    const finishForeign = (timedOut: boolean) => {
      const speaks = identifyProtocol(received);
      finish({
        cause: 'not-ssh',
        connectMs: connectMs(),
        bannerMs: bannerMs(),
        speaks,
        preview: printable(received),
        detail: `${where} does not speak SSH${speaks === 'unknown' ? '' : `; it speaks ${speaks.toUpperCase()}`}: it sent "${printable(received, 40)}"${timedOut ? ' and then nothing' : ''}`,
      });
    };

    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      // RFC 4253 4.2: the server may send other lines before its "SSH-" identification line.
      const lines = received.toString('latin1').split('\n');
      for (const raw of lines.slice(0, -1)) {
        const line = raw.replace(/\r$/, '');
        const m = /^SSH-([^-\s]+)-(\S+)/.exec(line);
        if (m) {
          finish({ connectMs: connectMs(), bannerMs: bannerMs(), banner: line, protoVersion: m[1], software: m[2], detail: `${where} identifies as ${line}` });
          return;
        }
      }
      // A service that is not SSH: decide as soon as the bytes cannot be a banner's prelude.
      if (!received.toString('latin1').startsWith('SSH-') && (identifyProtocol(received) !== 'unknown' || lines.length > 1 || received.length > 255)) {
        finishForeign(false);
      }
    });

    socket.on('end', () => {
      if (received.length > 0) finishForeign(false);
      else finish({ cause: 'connection-closed', connectMs: connectMs(), bannerMs: bannerMs(), detail: `${where} accepted the TCP connection and closed it after ${bannerMs()} ms without a banner` });
    });

    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (connectedAt !== undefined) {
        if (received.length > 0) return finishForeign(false);
        return finish({ cause: 'connection-closed', errorCode: err.code, connectMs: connectMs(), bannerMs: bannerMs(), detail: `${where} accepted the TCP connection, then reset it (${err.code}) without a banner` });
      }
      const cause = connectErrorCause(err.code) ?? 'host-unreachable';
      const detail =
        cause === 'connection-refused'
          ? `nothing listens on ${where} (connection refused)`
          : cause === 'host-not-found'
            ? `the host name '${opts.host}' does not resolve (${err.code})`
            : `cannot reach ${where}: ${err.code ?? err.message}`;
      finish({ cause, errorCode: err.code, detail });
    });

    socket.connect({ host: opts.host, port: opts.port });
  });
}
