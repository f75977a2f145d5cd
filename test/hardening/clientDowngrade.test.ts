/**
 * A join answer never downgrades a client that reached the API over https: before, an answer with a
 * `ws://` signaling URL or `http://` alternates was followed, putting the media token (and, at the next
 * join, the join token) on the wire in clear text. Now the signaling URL makes such an answer malformed
 * (that attempt fails, the next API URL is asked) and a plain-http alternate is dropped and reported.
 */
import type { ApiClient } from '../../runtime/client/ApiClient';
import { BadJoinAnswerError, requestJoin } from '../../runtime/client/joinApi';

/** An API client whose every call is answered by `answer`, as if by `url`. */
function answering(url: string, answer: unknown): ApiClient {
  return { call: async () => ({ data: answer, url }) } as unknown as ApiClient;
}

const answer = (over: Record<string, unknown> = {}) => ({
  room: 'r',
  region: 'eu-west-1',
  serverId: 'eu-a',
  signalingUrl: 'wss://eu-west-1.api.example.com/v1/rooms/r/signal',
  mediaToken: 'media-token',
  alternates: [
    { region: 'us-east-1', apiUrl: 'https://us-east-1.api.example.com' },
    { region: 'ap-southeast-1', apiUrl: 'http://ap-southeast-1.api.example.com' },
  ],
  expiresAt: 0,
  ...over,
});

test('over https, a ws:// signaling URL makes the answer malformed', async () => {
  const api = answering(
    'https://api.example.com',
    answer({ signalingUrl: 'ws://evil.example/v1/rooms/r/signal' }),
  );
  await expect(requestJoin(api, 'r', 'join-token', {})).rejects.toThrow(BadJoinAnswerError);
  await expect(requestJoin(api, 'r', 'join-token', {})).rejects.toThrow(/signalingUrl: must be wss:\/\//);
});

test('over https, an http:// alternate is dropped and named; https ones are kept', async () => {
  const { answer: parsed, ignoredAlternates } = await requestJoin(
    answering('https://api.example.com', answer()),
    'r',
    'join-token',
    {},
  );
  expect(parsed.alternates.map((a) => a.region)).toEqual(['us-east-1']);
  expect(ignoredAlternates).toEqual(['alternates.1.apiUrl: must be https:// when the API is https://']);
});

test('a plain-http API (the local stack) keeps its ws:// and http:// answers', async () => {
  const { answer: parsed } = await requestJoin(
    answering('http://127.0.1.1:8080', answer({ signalingUrl: 'ws://127.0.1.1:8080/v1/rooms/r/signal' })),
    'r',
    'join-token',
    {},
  );
  expect(parsed.signalingUrl).toBe('ws://127.0.1.1:8080/v1/rooms/r/signal');
  expect(parsed.alternates).toHaveLength(2);
});
