/**
 * Key sets: each token names its key (`kid`), a set verifies with every key it holds and signs with its
 * current one, so keys rotate without a moment where valid tokens are refused.
 */
import { SignJWT } from 'jose';
import {
  KeySetError,
  parseKeySet,
  signCascadeToken,
  signJoinToken,
  signMediaToken,
  verifyCascadeToken,
  verifyJoinToken,
  verifyMediaToken,
} from '../../../runtime/protocol/tokens';

const OLD = { kid: 'k1', secret: 'old-secret-0123456789abcdef-0123456789ab' };
const NEW = { kid: 'k2', secret: 'new-secret-0123456789abcdef-0123456789ab' };

describe('rotation', () => {
  // The three documented steps, as every verifier and signer sees them.
  const before = parseKeySet(OLD);
  const staged = parseKeySet({ ...OLD, verify: [NEW] });
  const switched = parseKeySet({ ...NEW, verify: [OLD] });
  const after = parseKeySet(NEW);

  test('a token signed before the switch verifies until the old key is dropped', async () => {
    const token = await signJoinToken(before, { sub: 'alice', room: 'r' });
    for (const keys of [before, staged, switched]) {
      await expect(verifyJoinToken(keys, token, 'r')).resolves.toMatchObject({ sub: 'alice' });
    }
    await expect(verifyJoinToken(after, token, 'r')).rejects.toMatchObject({ code: 'token_invalid' });
  });

  test('a token signed after the switch verifies wherever the new key was staged', async () => {
    const { token } = await signMediaToken(switched, { peerId: 'p', identity: 'i', room: 'r', server: 's' });
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toMatchObject({
      alg: 'HS256',
      kid: 'k2',
    });
    for (const keys of [staged, switched, after]) {
      await expect(verifyMediaToken(keys, token, { roomId: 'r' })).resolves.toMatchObject({ sub: 'p' });
    }
    await expect(verifyMediaToken(before, token, { roomId: 'r' })).rejects.toMatchObject({
      code: 'token_invalid',
    });
  });

  test('a staged key never signs', async () => {
    const token = await signJoinToken(staged, { sub: 'alice', room: 'r' });
    await expect(verifyJoinToken(before, token, 'r')).resolves.toMatchObject({ sub: 'alice' });
  });
});

describe('what a token must name', () => {
  const keys = parseKeySet(OLD);
  const secret = new TextEncoder().encode(OLD.secret);
  const jwt = (header: Record<string, unknown>) =>
    new SignJWT({ sub: 'mallory', room: 'r' })
      .setProtectedHeader({ alg: 'HS256', ...header })
      .setAudience('mrwebrtc:join')
      .setExpirationTime('10m')
      .sign(secret);

  test('a token without a kid is refused, even with the right secret', async () => {
    await expect(verifyJoinToken(keys, await jwt({}), 'r')).rejects.toMatchObject({
      code: 'token_invalid',
      message: expect.stringContaining('kid'),
    });
  });

  test('a kid the set does not hold is refused', async () => {
    await expect(verifyJoinToken(keys, await jwt({ kid: 'k9' }), 'r')).rejects.toMatchObject({
      code: 'token_invalid',
    });
  });

  test('the right kid with the right secret verifies (the independent signer agrees with ours)', async () => {
    await expect(verifyJoinToken(keys, await jwt({ kid: 'k1' }), 'r')).resolves.toMatchObject({
      sub: 'mallory',
    });
  });

  test('a garbage header is refused as invalid, not as an internal error', async () => {
    for (const token of ['x.y.z', '.a.b', `${'A'.repeat(2000)}.a.b`, '%%%.a.b']) {
      await expect(verifyJoinToken(keys, token, 'r')).rejects.toMatchObject({ code: 'token_invalid' });
    }
  });
});

describe('key set documents', () => {
  test.each([
    ['not json', 'is not JSON'],
    [[], 'must be a JSON object'],
    [{ secret: OLD.secret }, 'kid must be'],
    [{ kid: 'a b', secret: OLD.secret }, 'kid must be'],
    [{ kid: 'k1', secret: 'short' }, 'secret is 5 bytes; use at least 32 random bytes'],
    [{ ...OLD, verify: {} }, 'verify must be a list'],
    [{ ...OLD, verify: [{ kid: 'k2', secret: 'tiny' }] }, 'verify[0].secret is 4 bytes'],
    [{ ...OLD, verify: [OLD] }, 'verify[0].kid "k1" is listed twice'],
    [{ ...OLD, next: NEW }, 'has unknown field(s) next'],
  ])('%j is refused: %s', (doc, message) => {
    const input = typeof doc === 'string' ? doc : JSON.stringify(doc);
    let error: unknown;
    try {
      parseKeySet(input, 'JOIN_TOKEN_KEYS');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(KeySetError);
    expect((error as Error).message).toContain(`JOIN_TOKEN_KEYS: ${message}`);
    // Whatever is wrong, no secret is ever part of the message.
    for (const s of [OLD.secret, NEW.secret, 'short', 'tiny'])
      expect((error as Error).message).not.toContain(s);
  });
});

describe('cascade tokens', () => {
  const keys = parseKeySet(OLD);
  it('open one room to one media server, and are never a media token (nor a media token one)', async () => {
    const token = await signCascadeToken(keys, {
      fromServer: 'ap-1',
      fromRegion: 'ap-southeast-1',
      room: 'r',
      server: 'eu-1',
    });
    expect(await verifyCascadeToken(keys, token, { roomId: 'r', serverId: 'eu-1' })).toMatchObject({
      sub: 'ap-1',
      region: 'ap-southeast-1',
      room: 'r',
      server: 'eu-1',
    });
    await expect(verifyCascadeToken(keys, token, { roomId: 'other' })).rejects.toMatchObject({
      code: 'token_wrong_scope',
    });
    await expect(verifyCascadeToken(keys, token, { roomId: 'r', serverId: 'eu-2' })).rejects.toMatchObject({
      code: 'token_wrong_scope',
    });
    await expect(verifyMediaToken(keys, token, { roomId: 'r' })).rejects.toMatchObject({
      code: 'token_wrong_scope',
    });
    const media = await signMediaToken(keys, { peerId: 'p', identity: 'i', room: 'r', server: 'eu-1' });
    await expect(verifyCascadeToken(keys, media.token, { roomId: 'r' })).rejects.toMatchObject({
      code: 'token_wrong_scope',
    });
  });

  it('carry a region name: its peers are told it as their region', async () => {
    const token = await signCascadeToken(keys, {
      fromServer: 'ap-1',
      fromRegion: '<b>ap</b>',
      room: 'r',
      server: 'eu-1',
    });
    await expect(verifyCascadeToken(keys, token, { roomId: 'r' })).rejects.toMatchObject({
      code: 'token_invalid',
      message: expect.stringContaining('"region" claim'),
    });
  });
});
