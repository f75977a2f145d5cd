/**
 * Node implementation of the platform: HTTP through node:http/https and WebSockets through `ws`, both
 * with the configured source address and DNS servers; mediasoup-client with the Chrome111 handler over
 * WebRTC globals the host installs (e.g. @roamhq/wrtc).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { Device } from 'mediasoup-client';
import WebSocket from 'ws';
import type { ClientConfig } from './config';
import { ZoneDnsResolver } from './DnsResolver';
import type { HttpTransport, Platform, SocketFactory } from './platform';

/** Largest API answer read; join answers are a few KB. */
const MAX_HTTP_BODY_BYTES = 1024 * 1024;
/** Largest signaling frame accepted; matches the media server's MAX_SIGNALING_FRAME_BYTES with room to spare. */
const MAX_SOCKET_FRAME_BYTES = 256 * 1024;

export function nodePlatform(config: Pick<ClientConfig, 'dns' | 'localAddress'>): Platform {
  const resolver = config.dns
    ? new ZoneDnsResolver({
        servers: config.dns.servers,
        localAddress: config.dns.localAddress ?? config.localAddress,
        maxCacheSeconds: config.dns.maxCacheSeconds,
      })
    : undefined;
  const connectOptions = {
    ...(resolver ? { lookup: resolver.lookup } : {}),
    ...(config.localAddress ? { localAddress: config.localAddress } : {}),
  };
  // Keep-alive spares a TCP (and TLS) handshake per call; a pooled socket to a dead server fails fast
  // with a reset, and the per-attempt timeout covers a blackholed one.
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });

  const httpTransport: HttpTransport = ({ method, url, headers, body, signal }) =>
    new Promise((resolve, reject) => {
      const target = new URL(url);
      const isHttps = target.protocol === 'https:';
      const request = (isHttps ? https : http).request(
        target,
        {
          method,
          headers: {
            ...headers,
            ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}),
          },
          agent: isHttps ? httpsAgent : httpAgent,
          signal,
          ...connectOptions,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_HTTP_BODY_BYTES) {
              response.destroy(new Error(`answer exceeds ${MAX_HTTP_BODY_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () => {
            const retryAfter = response.headers['retry-after'];
            const region = response.headers['x-region'];
            resolve({
              status: response.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              ...(retryAfter ? { retryAfter } : {}),
              ...(typeof region === 'string' ? { region } : {}),
            });
          });
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body);
    });

  const openSocket: SocketFactory = (url, protocols, handlers) => {
    const socket = new WebSocket(url, [...protocols], {
      ...connectOptions,
      maxPayload: MAX_SOCKET_FRAME_BYTES,
    });
    let lastError = '';
    socket.on('open', () => handlers.onOpen());
    socket.on('message', (data, isBinary) => {
      if (!isBinary) handlers.onMessage(data.toString());
    });
    // ws always follows 'error' with 'close'; keep the cause for the close reason.
    socket.on('error', (err) => (lastError = err.message));
    socket.on('close', (code, reason) => handlers.onClose(code, reason.toString() || lastError));
    return {
      send: (text) => socket.send(text),
      close: (code, reason) => {
        // Closing a socket that is still connecting makes ws throw synchronously; terminate instead.
        if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
        else socket.close(code, reason);
      },
    };
  };

  return {
    http: httpTransport,
    openSocket,
    createDevice: async () => {
      if (typeof (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection !== 'function') {
        throw new Error(
          'media in Node needs WebRTC globals (RTCPeerConnection, MediaStream...): install @roamhq/wrtc on globalThis first',
        );
      }
      return new Device({ handlerName: 'Chrome111' });
    },
    close: () => {
      httpAgent.destroy();
      httpsAgent.destroy();
      resolver?.close();
    },
  };
}
