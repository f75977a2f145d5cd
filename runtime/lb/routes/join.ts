/**
 * `POST /v1/rooms/:roomId/join`: verify the join token, find or place the room's server, mint a media
 * token for it. Every rejection happens before placement, so a refused join writes nothing.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { signMediaToken, TokenError } from '../../protocol/tokens';
import { ApiError, OverloadedError } from '../apiError';
import { chooseAlternates } from '../alternates';
import { authenticateJoin, joinAuth, joinRateLimitKey } from '../joinAuth';
import type { JoinOutcome } from '../LbMetrics';
import { familyOfHost, otherFamily, regionApiUrl, signalingUrl, turnHost } from '../regionUrls';
import { turnIceServers } from '../turnCredentials';
import { joinAnswer, joinBody, noQuery, roomParams, type JoinBody } from '../schemas';

function outcomeOfError(err: unknown): JoinOutcome {
  if (err instanceof TokenError) return 'rejected';
  if (err instanceof OverloadedError) return 'shed';
  if (err instanceof ApiError && err.code === 'no_capacity') return 'no_capacity';
  if (err instanceof ApiError && err.code === 'placement_conflict') return 'conflict';
  const status = (err as { statusCode?: number }).statusCode;
  if (status === 429) return 'rate_limited';
  if (typeof status === 'number' && status >= 400 && status < 500) return 'bad_request';
  return 'error';
}

export async function joinRoutes(app: FastifyInstance): Promise<void> {
  const { joinTokenKeys, mediaTokenKeys, region, publicApiUrl, backupApiUrl, addressApiUrl, limits, turn } =
    app.lbConfig;
  const own = { region, publicApiUrl, backupApiUrl, addressApiUrl };
  await app.register(joinAuth);
  /** Joins the shedder admitted and not yet answered (each releases its slot once). */
  const admitted = new WeakSet<object>();

  app.post<{ Params: { roomId: string }; Body: JoinBody }>(
    '/v1/rooms/:roomId/join',
    {
      schema: { params: roomParams, querystring: noQuery, body: joinBody, response: { 200: joinAnswer } },
      config: {
        rateLimit: {
          max: limits.joinsPerMinute,
          keyGenerator: (request) => joinRateLimitKey(request, joinTokenKeys),
        },
      },
      // Shedding comes first and costs nothing: the excess of a herd is told when to come back.
      onRequest: async (request, reply) => {
        const shed = app.loadShedder.admit();
        if (shed) throw new OverloadedError(app.loadShedder.retryAfterSeconds, shed.replaceAll('_', ' '));
        admitted.add(request);
        // 'close' fires once whatever happens: answered, failed, or the client gone mid-way (a herd's
        // clients time out and leave; a slot they held must come back).
        reply.raw.once('close', () => {
          if (admitted.delete(request)) app.loadShedder.release();
        });
      },
      // Authenticate before the body is validated: an anonymous caller learns nothing about the schema.
      preValidation: async (request) => {
        await authenticateJoin(request, joinTokenKeys);
        // The body is optional (a first join has nothing to report); an absent one validates as `{}`.
        if (request.body === undefined) request.body = {};
      },
      onError: async (_request, _reply, err) => {
        app.metrics.joins.inc({ outcome: outcomeOfError(err) });
      },
    },
    async (request) => {
      const claims = await authenticateJoin(request, joinTokenKeys);
      const { roomId } = request.params;
      const body = request.body;
      const stopTimer = app.metrics.placementSeconds.startTimer();
      const exclude = {
        serverIds: new Set(body.exclude?.serverIds ?? []),
        regions: new Set(body.exclude?.regions ?? []),
      };
      const { server, outcome, snapshot } = await app.placement.assign(roomId, exclude);
      const peerId = randomUUID();
      const media = await signMediaToken(mediaTokenKeys, {
        peerId,
        identity: claims.sub,
        room: roomId,
        server: server.id,
      });
      // Answers stay in the name family the request came in on (regionUrls.ts); placement only answers
      // servers of regions with a known primary URL, the fallback when the family has none.
      const family = familyOfHost(request.headers.host, app.lbConfig);
      const apiUrl =
        regionApiUrl(snapshot, server.region, own, family) ?? regionApiUrl(snapshot, server.region, own)!;
      const other = otherFamily(family);
      const otherUrl = other && regionApiUrl(snapshot, server.region, own, other);
      // The serving region's relay, with a credential bound to this join's peer: a client that rejoins
      // elsewhere gets that region's relay and a fresh credential with the answer. The relay is named in
      // the answer's family; where the LB has an address family (the local stack), by address, because
      // WebRTC stacks resolve TURN names through the system resolver, which cannot see emulated zones.
      const relayBase = (addressApiUrl && regionApiUrl(snapshot, server.region, own, 'address')) || apiUrl;
      const relay = turn
        ? turnIceServers({
            secret: turn.secret.current.key,
            peerId,
            endpoint: { host: turnHost(relayBase, turn.hostPrefix), port: turn.port, tlsPort: turn.tlsPort },
            ttlSeconds: turn.ttlSeconds,
          })
        : undefined;
      const alternates = chooseAlternates(snapshot, {
        own,
        family,
        servingRegion: server.region,
        excludedRegions: exclude.regions,
        rtt: body.rtt,
      });
      stopTimer();
      app.metrics.joins.inc({ outcome });
      request.log.info(
        { room: roomId, server: server.id, serverRegion: server.region, outcome, family },
        'join answered',
      );
      return {
        room: roomId,
        region: server.region,
        serverId: server.id,
        signalingUrl: signalingUrl(apiUrl, roomId),
        ...(otherUrl && otherUrl !== apiUrl ? { fallbackSignalingUrl: signalingUrl(otherUrl, roomId) } : {}),
        mediaToken: media.token,
        ...(relay && { iceServers: relay.iceServers }),
        alternates,
        expiresAt: media.expiresAt,
      };
    },
  );
}
