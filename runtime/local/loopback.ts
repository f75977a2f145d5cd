/**
 * The stack's one precondition on the host: every region binds its own loopback address. Linux routes
 * all of 127.0.0.0/8 to lo; other systems need an alias per address, and a missing one would otherwise
 * surface later as a child process failing to listen.
 */
import * as net from 'node:net';

/** The addresses nothing can bind here. */
export async function checkLoopbackAddresses(addresses: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const address of addresses) {
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(0, address, () => srv.close(() => resolve(true)));
    });
    if (!ok) missing.push(address);
  }
  return missing;
}

/** Throws, with the commands that add the aliases, unless every address can be bound. */
export async function requireLoopbackAddresses(addresses: readonly string[]): Promise<void> {
  const missing = await checkLoopbackAddresses(addresses);
  if (missing.length > 0) {
    throw new Error(
      `cannot bind ${missing.join(', ')}: add loopback aliases first (macOS: ${missing.map((a) => `sudo ifconfig lo0 alias ${a} up`).join('; ')})`,
    );
  }
}
