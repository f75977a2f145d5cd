import { TokenError } from '../../auth/tokens';
import { ProtocolError } from '../protocol';

/**
 * Maps what a request handler threw to what the client is told. mediasoup reports a client's bad RTP
 * or DTLS structures as TypeError (and codecs it cannot do as UnsupportedError): those are the client's
 * to fix and their messages name the field. Anything else is ours and its detail stays in our logs.
 */
export function toProtocolError(err: unknown): { error: ProtocolError; internal: boolean } {
  if (err instanceof ProtocolError) return { error: err, internal: false };
  if (err instanceof TokenError)
    return { error: new ProtocolError('unauthorized', err.message), internal: false };
  const e = err as { name?: string; message?: string };
  if (e?.name === 'TypeError' || e?.name === 'UnsupportedError') {
    return {
      error: new ProtocolError('bad_request', clientMessage(String(e.message ?? ''))),
      internal: false,
    };
  }
  return {
    error: new ProtocolError('internal', 'the media server failed to handle the request'),
    internal: true,
  };
}

/**
 * The legacy (3.8) worker sends some refusals with an empty reason, which its channel turns into just
 * " [method:transport.produce]": say at least which request's parameters were refused.
 */
function clientMessage(message: string): string {
  const bare = /^\s*\[method:([^\]]*)\]\s*$/.exec(message);
  if (bare) return `mediasoup refused the parameters of ${bare[1]}`;
  return message.trim() === '' ? 'invalid parameters' : message;
}
