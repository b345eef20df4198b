/**
 * A 127.0.0.1 port that nothing listens on: the kernel's pick, closed again. A connection to it is refused
 * (ECONNREFUSED) — what a storage endpoint or an API URL that nothing serves answers.
 */
import { createServer } from 'node:net';

export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  await new Promise((res) => server.close(res));
  return port;
}
