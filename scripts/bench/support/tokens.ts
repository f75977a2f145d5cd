import type { KeySet } from '../../../runtime/protocol/tokens';
/**
 * Join tokens minted ahead of a timed run with the real signer: minting costs ~0.2 ms each, which would
 * otherwise be load-generator time inside the measured window.
 */
import { signJoinToken } from '../../../runtime/protocol/tokens';

/** Tokens signed at once; the signer is async (WebCrypto), so a batch overlaps them. */
const MINT_BATCH = 256;

export interface JoinTokenSpec {
  readonly sub: string;
  readonly room: string;
}

export async function mintJoinTokens(key: KeySet, specs: readonly JoinTokenSpec[]): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < specs.length; i += MINT_BATCH) {
    const batch = specs.slice(i, i + MINT_BATCH);
    out.push(...(await Promise.all(batch.map((s) => signJoinToken(key, { ...s, ttlSeconds: 3_600 })))));
  }
  return out;
}
