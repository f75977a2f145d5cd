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

/**
 * A video producer holds back a key frame request that comes within this long of the previous one,
 * then sends one for all of them. Without it, consumers created together (a region's peers rejoining
 * one server, a cascade leg consuming anew) lose their key frame: libwebrtc's encoder ignores a
 * request within 300 ms of the last one it honoured, and mediasoup asks again only 1 s later, so a
 * rejoined peer's first picture came about a second late. 400 ms clears the encoder's window with
 * room for network jitter between two requests.
 */
export const KEY_FRAME_REQUEST_DELAY_MS = 400;
