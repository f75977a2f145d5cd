/**
 * Which mediasoup failures are the client's. mediasoup validates the structures a client sends (DTLS
 * parameters, RTP parameters, RTP capabilities) and reports what it finds wrong as TypeError, and codecs
 * it cannot do as UnsupportedError; their messages name the field, and the client can fix its request.
 *
 * Only the calls that hand mediasoup a client's structure run through `clientInput`: the same error
 * names anywhere else (a bug of ours reading a property of undefined is a TypeError too) are our own
 * failures, answered `internal error` with the detail in our log (signaling/errors.ts).
 */
import { ProtocolError } from '../protocol/signaling';

const CLIENT_ERROR_NAMES = new Set(['TypeError', 'UnsupportedError']);

/** Runs a mediasoup call on a client's structure; its validation errors become `bad_request`. */
export async function clientInput<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const e = err as { name?: unknown; message?: unknown } | null;
    if (typeof e?.name === 'string' && CLIENT_ERROR_NAMES.has(e.name)) {
      throw new ProtocolError('bad_request', clientMessage(String(e.message ?? '')));
    }
    throw err;
  }
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
