/**
 * Child process: where the media bench's consumers send their RTP. A bound UDP socket that is never
 * read: once its receive buffer is full the kernel drops what arrives, so the sender (the mediasoup
 * worker) pays its full cost per packet (SRTP, sendto, the loopback stack) and the receiver none.
 * Reading would put a busy Node process on the two cores the worker is measured on.
 * IPC: → { type: 'ready', port }. Ends on SIGTERM (default action; the event loop is blocked on purpose)
 * or after MAX_LIFETIME_MS.
 */
import * as dgram from 'node:dgram';

/** Longest a sink lives if its bench died without stopping it. */
const MAX_LIFETIME_MS = 60 * 60 * 1000;

const socket = dgram.createSocket('udp4');
socket.bind(0, '127.0.0.1', () => {
  process.send!({ type: 'ready', port: socket.address().port }, () => {
    // Block the only thread: libuv never reads the socket again.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, MAX_LIFETIME_MS);
    process.exit(0);
  });
});
