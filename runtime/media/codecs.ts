/**
 * The codecs every room's router offers. Opus for audio; VP8 first for video (every browser and
 * libwebrtc build encodes it, and it simulcasts without profile negotiation), H264 constrained baseline
 * for Safari/iOS hardware encoders. The order is the router's preference.
 */
import type { RtpCodecCapability } from './engine';

export const ROOM_MEDIA_CODECS: RtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48_000, channels: 2 },
  {
    kind: 'video',
    mimeType: 'video/VP8',
    clockRate: 90_000,
    parameters: { 'x-google-start-bitrate': 1_000 },
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90_000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
  },
];

/** Where a send transport's incoming bitrate is capped: a 720p camera plus simulcast layers fits. */
export const MAX_INCOMING_BITRATE_BPS = 3_000_000;
/** mediasoup's default (600 kbps) starts a consumer's video blurry; BWE ramps from here. */
export const INITIAL_OUTGOING_BITRATE_BPS = 1_000_000;
