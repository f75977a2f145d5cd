/**
 * Child process: the HTTP floor of the join bench. A bare fastify (no plugins, no logger, no schema) on
 * loopback with the join's route shape, answering a JSON body of the join answer's size, so the join
 * path's cost can be read as a multiple of what fastify itself costs on this machine.
 * Env: PORT. Prints nothing; the bench polls GET /ping.
 */
import Fastify from 'fastify';

/** About the size of a join answer (a JWT and a few URLs). */
const ANSWER = {
  room: 'room-0',
  region: 'eu-west-1',
  serverId: 'bench-media-0',
  signalingUrl: 'ws://127.0.0.1:1/v1/rooms/room-0/signal',
  mediaToken: 'x'.repeat(300),
  alternates: [],
  expiresAt: 0,
};

async function main(): Promise<void> {
  const app = Fastify({ logger: false });
  app.get('/ping', async () => ({ ok: true }));
  app.post('/v1/rooms/:roomId/join', async () => ANSWER);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
  await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
}

void main().catch((err: unknown) => {
  console.error('bare fastify failed:', err);
  process.exit(1);
});
