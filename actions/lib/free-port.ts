/**
 * Finds a free TCP port on the loopback interface, for a server or a QEMU `hostfwd` that is started next.
 *
 * The port is free when this returns; something else can take it before the caller binds it, so callers
 * that cannot bind to port 0 themselves (QEMU's hostfwd) retry with a new port when the bind fails.
 */
import { createServer } from 'node:net';

export interface FindFreePortOptions {
  /** Interface to probe (default 127.0.0.1). */
  host?: string;
}

/** Returns a TCP port that nothing listens on at `host` right now (the kernel's pick for port 0). */
export function findFreePort(options: FindFreePortOptions = {}): Promise<number> {
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error(`no free port found on ${host}`))));
    });
  });
}
