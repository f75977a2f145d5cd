/**
 * One join attempt: from a join token to a connection that is ready to go live.
 *
 * Steps: a fresh join token, `POST /v1/rooms/:roomId/join` through the API client's fallback chain
 * (with the measured RTTs and the outage's exclusions), the signaling socket to the answer's
 * `signalingUrl` with the media token, `join` on the media server, then media: the Device and
 * transports, and every local track produced with its muted state (LocalTracks.ts).
 *
 * Policy:
 * - The answer's alternates join the API client's fallback chain before the socket is even tried: the
 *   platform's own view of where else to go helps precisely when this server, its region or every
 *   configured name fails next.
 * - The signaling name is treated like the API names: when the socket to `signalingUrl` cannot be
 *   opened at all (the name does not resolve, nothing answers), the same region's signaling URL in
 *   the other name family (`fallbackSignalingUrl`) is tried with the same media token before the
 *   attempt fails, because a dead DNS zone is not a dead region. A socket the edge closed with a code
 *   of its own is an answer, not an unreachable name: no fallback then.
 * - A failure says what it proved dead (AttemptFailure, read by outage.ts): a socket the region's edge
 *   would not even open blames the region; a server that failed the join or the media setup, or broke
 *   during it, blames that server; a refused media token (expired on the way, already used) blames
 *   nobody, a fresh join fixes it. A connection that failed is closed here.
 * - An attempt owns nothing of the session's: it gets its own abort signal, hands every connection it
 *   creates to `onConnection` before the server join (so the owner hears its events from the start),
 *   and returns the connection without making it live. Adopting it, or closing it, is the caller's
 *   call; so an attempt can run while another connection is still live.
 */
import type { ApiClient } from './ApiClient';
import { Connection } from './Connection';
import { SignalingLostError, SignalingOpenError } from './errors';
import { type JoinExclusions, requestJoin } from './joinApi';
import type { LocalTracks } from './LocalTracks';
import { AttemptFailure, isMediaTokenRefusal } from './outage';
import type { Platform } from './platform';
import type { RttElection } from './RttElection';
import { SignalingChannel, type SignalingTimeouts } from './SignalingChannel';
import { abortReason } from './timers';

/** A join token, or a function that returns a fresh one (called before every join and rejoin). */
export type TokenSource = string | (() => string | Promise<string>);

/** What every attempt of one session shares. */
export interface AttemptContext {
  readonly roomId: string;
  readonly token: TokenSource;
  readonly displayName?: string;
  /** Receive the other peers' media (media is set up even without local tracks). */
  readonly consume: boolean;
  readonly local: LocalTracks;
  readonly api: ApiClient;
  readonly platform: Pick<Platform, 'openSocket' | 'createDevice'>;
  readonly election?: RttElection;
  readonly signaling: SignalingTimeouts;
  /** Whether the answer's alternates extend the API fallback chain. */
  readonly followAlternates: boolean;
  /** Client config `iceTransportPolicy`. @default 'all' */
  readonly iceTransportPolicy?: 'all' | 'relay';
  /** Called with every connection as soon as it exists, before the server join. */
  readonly onConnection: (conn: Connection) => void;
  readonly onWarning: (message: string) => void;
}

export interface AttemptInput {
  /** What the outage has learned so far: sent with the join, a hint for the LB. */
  readonly exclude: JoinExclusions;
  /** Aborting it ends the attempt with the signal's reason; a connection set up by then is closed. */
  readonly signal: AbortSignal;
  /** API hedging delay for this attempt's join call. @default the API client's */
  readonly hedgeMs?: number;
  /** Regions whose URLs hold no other URL back in the join call (a switch's suspected region). */
  readonly suspectRegions?: readonly string[];
}

/**
 * Runs one attempt. Resolves with a joined connection that is not live yet; rejects with an
 * AttemptFailure (or the signal's reason once aborted).
 */
export async function connectOnce(ctx: AttemptContext, input: AttemptInput): Promise<Connection> {
  const conn = await openConnection(ctx, input);
  await joinServer(ctx, conn, input.signal);
  return conn;
}

/**
 * Placement and the signaling socket: the LB has chosen a server and its region's edge answers. The
 * server has not seen this peer yet (a make-before-break switch decides here whether to go on).
 */
export async function openConnection(
  ctx: AttemptContext,
  { exclude, signal, hedgeMs, suspectRegions }: AttemptInput,
): Promise<Connection> {
  const token = typeof ctx.token === 'function' ? await ctx.token() : ctx.token;
  const rtt = ctx.election?.rttReport();
  const { answer, apiUrl, ignoredAlternates } = await requestJoin(
    ctx.api,
    ctx.roomId,
    token,
    { ...(rtt ? { rtt } : {}), ...(Object.keys(exclude).length ? { exclude } : {}) },
    { signal, hedgeMs, suspectRegions },
  );
  if (ctx.followAlternates) ctx.api.setAlternates(answer.alternates);
  if (ctx.followAlternates && ignoredAlternates.length > 0) {
    ctx.onWarning(`join answer from ${apiUrl}: ignored ${ignoredAlternates.join('; ')}`);
  }
  let channel: SignalingChannel;
  try {
    channel = await openSignaling(ctx, answer.signalingUrl, answer.mediaToken, signal).catch((err) => {
      if (!answer.fallbackSignalingUrl || !unreachable(err)) throw err;
      ctx.onWarning(
        `signaling ${answer.signalingUrl} unreachable (${(err as Error).message}); trying ${answer.fallbackSignalingUrl}`,
      );
      return openSignaling(ctx, answer.fallbackSignalingUrl, answer.mediaToken, signal);
    });
  } catch (err) {
    // The region's edge did not even take a socket: the region looks dead, not just the server.
    throw new AttemptFailure(err, answer.serverId, answer.region, err instanceof SignalingOpenError);
  }
  const conn = new Connection({
    answer,
    apiUrl,
    channel,
    createDevice: ctx.platform.createDevice,
    consume: ctx.consume,
    iceTransportPolicy: ctx.iceTransportPolicy,
  });
  ctx.onConnection(conn);
  return conn;
}

function openSignaling(
  ctx: AttemptContext,
  url: string,
  mediaToken: string,
  signal: AbortSignal,
): Promise<SignalingChannel> {
  return SignalingChannel.open({
    openSocket: ctx.platform.openSocket,
    url,
    mediaToken,
    ...ctx.signaling,
    signal,
  });
}

/** No socket at all (timeout, or the abnormal close a failed connection or lookup reports). */
function unreachable(err: unknown): boolean {
  return (
    err instanceof SignalingOpenError && (err.closeCode === undefined || err.closeCode === CLOSE_ABNORMAL)
  );
}

/** The close code a WebSocket reports when no connection was made or it broke without a close frame. */
const CLOSE_ABNORMAL = 1006;

/** The server-side join and the media setup; the connection is closed if either fails. */
export async function joinServer(ctx: AttemptContext, conn: Connection, signal: AbortSignal): Promise<void> {
  try {
    await conn.join(ctx.displayName);
    if (ctx.consume || ctx.local.size > 0) await ctx.local.restoreOn(await conn.ensureMedia());
    if (conn.lostReason)
      throw new SignalingLostError('signaling_closed', `lost during setup: ${conn.lostReason}`);
  } catch (err) {
    conn.close('reconnecting');
    const serverAtFault = !isMediaTokenRefusal(err);
    throw new AttemptFailure(err, serverAtFault ? conn.answer.serverId : undefined, conn.answer.region);
  }
  if (signal.aborted) {
    conn.close('closed');
    throw abortReason(signal);
  }
}
