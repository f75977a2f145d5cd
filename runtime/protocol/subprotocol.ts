/**
 * How a client presents its media token when it opens the signaling WebSocket: as a WebSocket
 * subprotocol, never in the URL. URLs end up in access logs (the ALB's, the LB's request log, proxies');
 * the `Sec-WebSocket-Protocol` header does not. Browsers cannot set other headers on a WebSocket, and a
 * JWT (base64url and dots) is a valid subprotocol token (RFC 6455 §4.1), so a client offers two:
 *
 *   Sec-WebSocket-Protocol: mrwebrtc.signal.v1, mrwebrtc.token.<media token>
 *
 * and the server selects `mrwebrtc.signal.v1`, so the token is never echoed back.
 */

/** The protocol the server selects; versioned so a later wire change can be told apart. */
export const SIGNALING_SUBPROTOCOL = 'mrwebrtc.signal.v1';
const TOKEN_PREFIX = 'mrwebrtc.token.';
/**
 * The protocol of cascading's control channel between two legs' media servers (through the remote
 * leg's LB), which carries its cascade token the same way: `mrwebrtc.cascade.v1, mrwebrtc.token.<t>`.
 */
export const CASCADE_SUBPROTOCOL = 'mrwebrtc.cascade.v1';

/** The subprotocols a media server offers for a cascade token. */
export function cascadeSubprotocols(token: string): [string, string] {
  return [CASCADE_SUBPROTOCOL, `${TOKEN_PREFIX}${token}`];
}

/** The subprotocols a client offers for `token`. */
export function signalingSubprotocols(token: string): [string, string] {
  return [SIGNALING_SUBPROTOCOL, `${TOKEN_PREFIX}${token}`];
}

/**
 * The media token a client offered, from the raw `Sec-WebSocket-Protocol` header (or ws's parsed
 * set), or undefined when it offered none. Two tokens are refused: a request must name one peer.
 */
export function tokenFromSubprotocols(offered: string | Iterable<string> | undefined): string | undefined {
  if (offered === undefined) return undefined;
  const list = typeof offered === 'string' ? offered.split(',').map((p) => p.trim()) : [...offered];
  const tokens = list.filter((p) => p.startsWith(TOKEN_PREFIX)).map((p) => p.slice(TOKEN_PREFIX.length));
  return tokens.length === 1 && tokens[0]!.length > 0 ? tokens[0] : undefined;
}
