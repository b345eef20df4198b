/**
 * Finds a free TCP port on the loopback interface, for a server or a QEMU `hostfwd` that is started next.
 *
 * The port is free when this returns; something else (another runner on the same host) can take it before
 * the caller binds it. A caller that can listen itself should listen on port 0 instead; one that cannot
 * (QEMU's hostfwd binds inside QEMU) retries with a new port, passing the taken ones as `exclude`
 * (startVm in qemu-vm.ts does).
 */
import { createServer } from 'node:net';

export interface FindFreePortOptions {
  /** Interface to probe (default 127.0.0.1). */
  host?: string;
  /** Ports not to return (ones that a caller found taken after all); the kernel is asked again. */
  exclude?: ReadonlySet<number>;
}

/** How often the kernel is asked for a port before giving up on one outside `exclude`. */
const PICKS = 20;

/** Returns a TCP port that nothing listens on at `host` right now (the kernel's pick for port 0), not in `exclude`. */
export async function findFreePort(options: FindFreePortOptions = {}): Promise<number> {
  const host = options.host ?? '127.0.0.1';
  for (let i = 0; i < PICKS; i++) {
    const port = await kernelPort(host);
    if (!options.exclude?.has(port)) return port;
  }
  throw new Error(`no free port on ${host} outside the ${options.exclude?.size ?? 0} excluded ones after ${PICKS} tries`);
}

function kernelPort(host: string): Promise<number> {
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
