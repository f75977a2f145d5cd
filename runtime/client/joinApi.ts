/**
 * The join call (`POST /v1/rooms/:roomId/join`) and the shape of its answer. The answer is checked,
 * because a malformed answer from one region must count as that attempt failing, not crash the
 * session later with an undefined URL.
 */
import { z } from 'zod';
import type { ApiClient } from './apiClient';

export interface JoinExclusions {
  readonly serverIds?: readonly string[];
  readonly regions?: readonly string[];
}

export interface JoinRequestBody {
  readonly rtt?: Readonly<Record<string, number>>;
  readonly exclude?: JoinExclusions;
}

const joinAnswerSchema = z.object({
  room: z.string().min(1),
  region: z.string().min(1),
  serverId: z.string().min(1),
  signalingUrl: z.string().regex(/^wss?:\/\//, 'must be a ws:// or wss:// URL'),
  mediaToken: z.string().min(1),
  alternates: z.array(z.object({ region: z.string(), apiUrl: z.string() })).default([]),
  expiresAt: z.union([z.number(), z.string()]).optional(),
});

export type JoinAnswer = z.output<typeof joinAnswerSchema>;

export class BadJoinAnswerError extends Error {
  constructor(
    readonly url: string,
    detail: string,
  ) {
    super(`the join answer from ${url} is malformed: ${detail}`);
    this.name = 'BadJoinAnswerError';
  }
}

export async function requestJoin(
  api: ApiClient,
  roomId: string,
  token: string,
  body: JoinRequestBody,
  signal?: AbortSignal,
): Promise<{ answer: JoinAnswer; apiUrl: string }> {
  const { data, url } = await api.call<unknown>(`/v1/rooms/${encodeURIComponent(roomId)}/join`, {
    method: 'POST',
    token,
    body,
    signal,
  });
  const parsed = joinAnswerSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadJoinAnswerError(url, `${issue.path.join('.') || 'answer'}: ${issue.message}`);
  }
  return { answer: parsed.data, apiUrl: url };
}
