/**
 * The app's intent for its local media: which track it sends per kind and whether that track is
 * muted. The intent outlives every server; `restoreOn` applies it to a new server's media.
 *
 * Policy: the intent is recorded before any server is told, and every server is told the whole
 * intent, never a diff. So a rejoin produces the very same tracks with their muted state, and a
 * control that raced a connection loss is simply applied again by the next server's restore (the
 * operations involved are idempotent: see Outbox.ts).
 */
import type { MediaConnection, MediaKind } from './MediaConnection';

export class LocalTracks {
  private readonly tracks = new Map<MediaKind, MediaStreamTrack>();
  private readonly muted = new Map<MediaKind, boolean>();

  constructor(initial: { readonly video?: MediaStreamTrack; readonly audio?: MediaStreamTrack } = {}) {
    for (const kind of ['audio', 'video'] as const) {
      const track = initial[kind];
      if (track) this.tracks.set(kind, track);
    }
  }

  /** How many kinds have a track to send. */
  get size(): number {
    return this.tracks.size;
  }

  track(kind: MediaKind): MediaStreamTrack | null {
    return this.tracks.get(kind) ?? null;
  }

  isMuted(kind: MediaKind): boolean {
    return this.muted.get(kind) ?? false;
  }

  setTrack(kind: MediaKind, track: MediaStreamTrack | null): void {
    if (track) this.tracks.set(kind, track);
    else this.tracks.delete(kind);
  }

  setMuted(kind: MediaKind, muted: boolean): void {
    this.muted.set(kind, muted);
  }

  /** Produces every local track on `media` with its muted state, one after the other. */
  async restoreOn(media: MediaConnection): Promise<void> {
    for (const [kind, track] of this.tracks) await media.setTrack(kind, track, this.isMuted(kind));
  }
}
