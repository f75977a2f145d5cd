/**
 * The herd bench's simulated clients and media server stand-ins (scripts/bench/herd.ts), shared by the
 * bench process (the herd) and its survivor side (scripts/bench/support/herdSurvivorSide.ts: the
 * stand-ins and the survivors' own calls, in a process of their own).
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { ApiClient } from '../../../runtime/client/ApiClient';
import { ApiUnavailableError, type Attempt } from '../../../runtime/client/errors';
import { requestJoin } from '../../../runtime/client/joinApi';
import { nodePlatform } from '../../../runtime/client/nodePlatform';
import { outageAfterLoss, retryUntilConnected } from '../../../runtime/client/outage';
import { SignalingChannel } from '../../../runtime/client/SignalingChannel';
import { SIGNALING_SUBPROTOCOL } from '../../../runtime/protocol/subprotocol';

/** The SDK's defaults (runtime/client/config.ts). */
export const TIMEOUTS = {
  attemptMs: 3_000,
  hedgeMs: 1_000,
  requestMs: 10_000,
  pingMs: 500,
  pongTimeoutMs: 3_000,
};
const BACKOFF = { baseMs: 500, capMs: 10_000 };
const MAX_ATTEMPTS = 30;

/** A media server stand-in: answers `join` and `ping` on any signaling socket the LB relays to it. */
export async function startSignalingStandIn(): Promise<{
  url: string;
  sockets: () => number;
  close(): Promise<void>;
}> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, handleProtocols: () => SIGNALING_SUBPROTOCOL });
  let open = 0;
  wss.on('connection', (ws) => {
    open++;
    ws.on('close', () => open--);
    ws.on('message', (raw) => {
      const { id, method } = JSON.parse(raw.toString()) as { id: number; method: string };
      const data =
        method === 'join'
          ? { peerId: randomUUID(), roomId: 'r', serverId: 's', region: 'r', routerRtpCapabilities: {} }
          : {};
      ws.send(JSON.stringify({ id, ok: true, data }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets: () => open,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => server.close(() => resolve())));
    },
  };
}

export interface JoinStats {
  readonly latenciesMs: number[];
  readonly answers: Record<string, number>;
}

/**
 * Each simulated client has its own source address (127.1.x.y; Linux answers the whole 127/8 on
 * loopback), as real clients have: the LB caps relays per address, and one address for every client
 * would measure that cap instead of the herd.
 */
function clientAddress(i: number): string {
  return `127.1.${(i >> 8) & 255}.${(i & 255) + 1 > 254 ? 254 : (i & 255) + 1}`;
}

/** One simulated client: joins through `lbUrl` with the SDK's code and keeps its signaling open. */
export async function connectClient(opts: {
  lbUrl: string;
  index: number;
  platforms: Array<ReturnType<typeof nodePlatform>>;
  room: string;
  token: string;
  exclude?: string;
  stats: JoinStats;
  signal: AbortSignal;
}): Promise<SignalingChannel> {
  const platform = nodePlatform({ localAddress: clientAddress(opts.index) });
  opts.platforms.push(platform);
  const api = new ApiClient({
    http: platform.http,
    apiUrls: [opts.lbUrl],
    ...TIMEOUTS,
    primaryReprobeMs: 60_000,
  });
  countServed(api, opts.stats);
  const attempt = async () => {
    const { answer } = await requestJoin(
      api,
      opts.room,
      opts.token,
      opts.exclude ? { exclude: { serverIds: [opts.exclude] } } : {},
      { signal: opts.signal },
    ).catch((err: unknown) => {
      // No URL answered usably (a shed 503 among them): `served` is not emitted, count here.
      if (err instanceof ApiUnavailableError) countAttempts(err.attempts, opts.stats);
      throw err;
    });
    const channel = await SignalingChannel.open({
      openSocket: platform.openSocket,
      url: answer.signalingUrl,
      mediaToken: answer.mediaToken,
      openTimeoutMs: TIMEOUTS.attemptMs,
      requestTimeoutMs: TIMEOUTS.requestMs,
      pingMs: 3_600_000,
      pongTimeoutMs: TIMEOUTS.pongTimeoutMs,
      signal: opts.signal,
    });
    await channel.request('join', { token: answer.mediaToken });
    return channel;
  };
  const outage = outageAfterLoss('signaling_closed', opts.exclude ?? 'none');
  const { result } = await retryUntilConnected({
    outage,
    maxAttempts: MAX_ATTEMPTS,
    backoffFirst: opts.exclude !== undefined,
    backoff: BACKOFF,
    signal: opts.signal,
    attempt,
  });
  return result;
}

function countServed(api: ApiClient, stats: JoinStats): void {
  api.on('served', ({ attempts }) => countAttempts(attempts, stats));
}

export function countAttempts(attempts: readonly Attempt[], stats: JoinStats): void {
  for (const a of attempts) {
    stats.latenciesMs.push(a.elapsedMs);
    const key = a.status ? String(a.status) : a.outcome;
    stats.answers[key] = (stats.answers[key] ?? 0) + 1;
  }
}
