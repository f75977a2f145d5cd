/**
 * The local stack's signing keys. Fresh per run, so a token from an earlier run never works, and one key
 * set per token kind, so media servers get only the media keys, as on AWS (where both live in Secrets
 * Manager: runtime/protocol/tokens.ts). The join keys also sign the dev tokens that `npm start`, the
 * browser demo and the chaos fleet use in place of an app backend.
 */
import { randomBytes } from 'node:crypto';
import { type KeySetDocument, parseKeySet, signJoinToken } from '../protocol/tokens';

const DEV_TOKEN_TTL_S = 24 * 3600;

export interface LocalKeySets {
  readonly joinTokenKeys: KeySetDocument;
  readonly mediaTokenKeys: KeySetDocument;
  /** The TURN relays' shared secret, the document shape AWS keeps it in: LBs sign, relays check. */
  readonly turnSecret: KeySetDocument;
}

export function freshKeySets(): LocalKeySets {
  return {
    joinTokenKeys: { kid: 'local-join', secret: randomBytes(32).toString('hex') },
    mediaTokenKeys: { kid: 'local-media', secret: randomBytes(32).toString('hex') },
    // Hex: a coturn config line takes it as is (runtime/protocol/turnRelayPolicy.ts checkTurnSecret).
    turnSecret: { kid: 'local-turn', secret: randomBytes(32).toString('hex') },
  };
}

export type DevTokenSigner = (room: string, sub?: string, ttlSeconds?: number) => Promise<string>;

/** Signs join tokens as the app's backend would, for identity `sub` (default `dev`). */
export function devTokenSigner(joinTokenKeys: KeySetDocument): DevTokenSigner {
  const keys = parseKeySet(joinTokenKeys);
  return (room, sub = 'dev', ttlSeconds = DEV_TOKEN_TTL_S) => signJoinToken(keys, { sub, room, ttlSeconds });
}
