import { TokenError } from '../../protocol/tokens';
import { ProtocolError } from '../../protocol/signaling';

/** What a client is told about a failure of ours: nothing it could act on, and nothing about us. */
export const INTERNAL_ERROR_MESSAGE = 'internal error';

/**
 * Maps what a request handler threw to what the client is told. A ProtocolError (other than
 * `internal`) is a refusal we wrote for the client, with its ids; a TokenError is the client's token.
 * Everything else is ours: a bug, or a mediasoup failure that is not about the client's input (those
 * that are were turned into `bad_request` where the input met mediasoup, see clientInput.ts). Ours is
 * answered `internal error`; the caller logs the original, with its stack, at error level.
 */
export function toProtocolError(err: unknown): { error: ProtocolError; internal: boolean } {
  if (err instanceof ProtocolError && err.code !== 'internal') return { error: err, internal: false };
  if (err instanceof TokenError)
    return { error: new ProtocolError('unauthorized', err.message), internal: false };
  return { error: new ProtocolError('internal', INTERNAL_ERROR_MESSAGE), internal: true };
}
