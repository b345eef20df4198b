/**
 * Listeners on 127.0.0.1 that misbehave the way a port does when no healthy sshd is behind it. They are real
 * kernel sockets; the ones that pretend to be something are hand-written stand-ins and are named so:
 *
 * - `silentListener`: accepts TCP and never says anything (a QEMU port forward to a guest that is still booting).
 * - `closingListener`: accepts TCP and closes at once (a QEMU forward to a guest where nothing listens on 22).
 * - `httpListener`: a real node:http server (e.g. Packer's http_directory server on the wrong port).
 * - `bannerOnlyListener` (stand-in): sends an SSH banner, then nothing (a wedged or starved sshd).
 * - `fullBacklogListener`: a `perl` socket listening with backlog 0 that never accepts, with its queue filled,
 *   so that the kernel drops further SYNs and connecting times out (a firewall that drops packets).
 *
 * Every listener's `close()` ends it (and kills the perl process by PID).
 */
import { spawn } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { createServer, Socket, type Server } from 'node:net';

export interface OddListener {
  port: number;
  close: () => Promise<void>;
}

async function listen(server: Server | ReturnType<typeof createHttpServer>, sockets: Set<Socket>): Promise<OddListener> {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Accepts connections and never writes a byte. */
export function silentListener(): Promise<OddListener> {
  return listen(createServer(() => undefined), new Set());
}

/** Accepts connections and closes them immediately. */
export function closingListener(): Promise<OddListener> {
  return listen(
    createServer((s) => s.end()),
    new Set(),
  );
}

/** A real HTTP server that answers every request with a small page. */
export function httpListener(): Promise<OddListener> {
  return listen(
    createHttpServer((_req, res) => res.end('<html>packer http_directory</html>\n')),
    new Set(),
  );
}

/** Stand-in for a wedged sshd: sends a banner, then stays silent. */
export function bannerOnlyListener(): Promise<OddListener> {
  return listen(
    createServer((s) => s.write('SSH-2.0-OpenSSH_9.2p1 wedged-stand-in\r\n')),
    new Set(),
  );
}

/** A listener whose accept queue is full, so that new connections time out (see the module comment). */
export async function fullBacklogListener(): Promise<OddListener> {
  const script = [
    'use strict; use Socket;',
    "socket(my $s, PF_INET, SOCK_STREAM, 0) or die; bind($s, sockaddr_in(0, inet_aton('127.0.0.1'))) or die;",
    'listen($s, 0) or die; my ($port) = sockaddr_in(getsockname($s)); $| = 1; print "$port\\n"; sleep 600;',
  ].join('\n');
  const child = spawn('perl', ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('error', reject);
  });
  // Fill the accept queue (backlog 0 holds one connection).
  const filler = new Socket();
  await new Promise<void>((resolve, reject) => {
    filler.once('connect', () => resolve());
    filler.once('error', reject);
    filler.connect(port, '127.0.0.1');
  });
  return {
    port,
    close: async () => {
      filler.destroy();
      if (child.exitCode === null && child.pid !== undefined) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        process.kill(child.pid, 'SIGKILL');
        await exited;
      }
    },
  };
}
