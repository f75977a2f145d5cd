/**
 * Mints a development join token: `npm run token -- --room <room> --sub <identity> [--ttl <seconds>]`.
 *
 * The join-token key set comes from JOIN_TOKEN_KEYS (the secret's JSON, as Secrets Manager holds it),
 * or else from the running local stack's `.local/state.json` (`joinTokenKeys`). The token is signed
 * with the set's current key and names it (`kid`). Prints the token alone on stdout so it composes:
 * `TOKEN=$(npm run -s token -- ...)`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { type KeySet, KeySetError, parseKeySet, signJoinToken } from '../runtime/protocol/tokens';
import { isRoomId, MAX_IDENTITY_LENGTH } from '../runtime/protocol/ids';

const USAGE = 'usage: npm run token -- --room <roomId> --sub <identity> [--ttl <seconds>]';
/** A dev token outliving a week is a credential someone forgot about. */
const MAX_TTL_S = 7 * 24 * 3600;
const DEFAULT_TTL_S = 3600;
const STATE_FILE = path.join(__dirname, '..', '.local', 'state.json');

class UsageError extends Error {}

function joinTokenKeys(): KeySet {
  try {
    if (process.env.JOIN_TOKEN_KEYS) return parseKeySet(process.env.JOIN_TOKEN_KEYS, 'JOIN_TOKEN_KEYS');
  } catch (err) {
    if (err instanceof KeySetError) throw new UsageError(err.message);
    throw err;
  }
  let raw: string;
  try {
    raw = fs.readFileSync(STATE_FILE, 'utf8');
  } catch {
    throw new UsageError(
      `no keys: set JOIN_TOKEN_KEYS, or start the local stack (npm start) so ${STATE_FILE} exists`,
    );
  }
  let doc: unknown;
  try {
    doc = (JSON.parse(raw) as { joinTokenKeys?: unknown }).joinTokenKeys;
  } catch {
    throw new UsageError(`${STATE_FILE} is not valid JSON; restart the local stack or set JOIN_TOKEN_KEYS`);
  }
  if (doc === undefined) {
    throw new UsageError(
      `${STATE_FILE} has no "joinTokenKeys"; restart the local stack or set JOIN_TOKEN_KEYS`,
    );
  }
  try {
    return parseKeySet(doc as never, `${STATE_FILE} joinTokenKeys`);
  } catch (err) {
    if (err instanceof KeySetError) throw new UsageError(err.message);
    throw err;
  }
}

function parse(argv: string[]): { room: string; sub: string; ttlSeconds: number } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { room: { type: 'string' }, sub: { type: 'string' }, ttl: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!values.room) throw new UsageError('missing --room: the room the token may join, e.g. --room demo');
  if (!isRoomId(values.room)) {
    throw new UsageError(
      `--room ${JSON.stringify(values.room)} is not a room id: use up to 128 letters, digits, "_", "-" or ".", starting with a letter or digit`,
    );
  }
  if (!values.sub) throw new UsageError('missing --sub: the identity of the peer, e.g. --sub alice');
  if (values.sub.length > MAX_IDENTITY_LENGTH)
    throw new UsageError(`--sub is longer than ${MAX_IDENTITY_LENGTH} characters`);
  let ttlSeconds = DEFAULT_TTL_S;
  if (values.ttl !== undefined) {
    ttlSeconds = Number(values.ttl);
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_S) {
      throw new UsageError(
        `--ttl ${JSON.stringify(values.ttl)} must be whole seconds from 1 to ${MAX_TTL_S}`,
      );
    }
  }
  return { room: values.room, sub: values.sub, ttlSeconds };
}

async function main(): Promise<void> {
  try {
    const args = parse(process.argv.slice(2));
    const token = await signJoinToken(joinTokenKeys(), {
      sub: args.sub,
      room: args.room,
      ttlSeconds: args.ttlSeconds,
    });
    process.stdout.write(`${token}\n`);
  } catch (err) {
    const message = err instanceof UsageError ? `${err.message}\n${USAGE}` : (err as Error).message;
    process.stderr.write(`error: ${message}\n`);
    process.exit(2);
  }
}

void main();
