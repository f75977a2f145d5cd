/**
 * Child process: the media server's signaling endpoint reduced to an echo (test/support/echoServer.ts's
 * pattern without its per-frame records, which would grow without bound under load). Serves
 * `/v1/rooms/:roomId/signal?token=…` on 127.0.0.1 and sends every frame back as it came.
 * IPC: → { type: 'ready', endpoint }; ← { type: 'stats' } → { type: 'stats', connections, frames }.
 */
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const SIGNAL_PATH = /^\/v1\/rooms\/[^/]+\/signal\?token=/;

async function main(): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  let frames = 0;
  wss.on('connection', (socket, req) => {
    socket.on('error', () => {});
    if (!SIGNAL_PATH.test(req.url ?? '')) {
      socket.close(4404, 'wrong path');
      return;
    }
    socket.on('message', (data, isBinary) => {
      frames++;
      socket.send(data, { binary: isBinary });
    });
  });
  process.on('message', (msg: { type?: string }) => {
    if (msg.type === 'stats') process.send!({ type: 'stats', connections: wss.clients.size, frames });
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'ready', endpoint: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` });
}

void main().catch((err: unknown) => {
  console.error('echo process failed:', err);
  process.exit(1);
});
