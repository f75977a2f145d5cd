/**
 * Synthetic media for simulated clients in Node: libwebrtc's globals from @roamhq/wrtc (for
 * mediasoup-client's browser handlers), a moving test pattern, a tone, and a counter of decoded frames.
 * The chaos fleet, the media benchmark and the media tests all send and count pictures with these.
 */
import * as vm from 'node:vm';
import * as wrtc from '@roamhq/wrtc';

// ---- globals ---------------------------------------------------------------------------------------

let globalsInstalled = false;

/** mediasoup-client's browser handlers use the WebRTC globals; wrtc provides libwebrtc's. Idempotent. */
export function installWrtcGlobals(): void {
  if (globalsInstalled) return;
  globalsInstalled = true;
  exitBeforeWrtcTeardown();
  const g = globalThis as Record<string, unknown>;
  for (const name of [
    'MediaStream',
    'MediaStreamTrack',
    'RTCPeerConnection',
    'RTCSessionDescription',
    'RTCIceCandidate',
    'RTCRtpSender',
    'RTCRtpReceiver',
    'RTCRtpTransceiver',
    'RTCDataChannel',
  ] as const) {
    g[name] = (wrtc as unknown as Record<string, unknown>)[name];
  }
}

/**
 * wrtc's native teardown crashes (SIGSEGV) when Node exits naturally after a media source existed,
 * turning a passing run into exit code 139. process.exit() skips the addon cleanup that crashes, so the
 * process exits through it as soon as its event loop is empty ('beforeExit'); exit() without a code
 * still runs every 'exit' listener first (jest sets its failure code there).
 *
 * Under jest, `process` is a sandbox copy whose events never fire; vm.runInThisContext evaluates in
 * Node's main context, where `process` is the real one.
 */
function exitBeforeWrtcTeardown(): void {
  const realProcess = vm.runInThisContext('process') as NodeJS.Process;
  realProcess.once('beforeExit', () => realProcess.exit());
}

// ---- synthetic media -------------------------------------------------------------------------------

/** A moving test pattern fed to libwebrtc as I420 frames: every frame differs, so the encoder works. */
export class SyntheticVideoSource {
  readonly track: MediaStreamTrack;
  private readonly source = new wrtc.nonstandard.RTCVideoSource();
  private readonly timer: NodeJS.Timeout;
  private frameNumber = 0;

  constructor(
    readonly width = 320,
    readonly height = 240,
    fps = 15,
  ) {
    this.track = this.source.createTrack() as unknown as MediaStreamTrack;
    this.timer = setInterval(() => this.pushFrame(), Math.round(1000 / fps));
  }

  stop(): void {
    clearInterval(this.timer);
    this.track.stop();
  }

  private pushFrame(): void {
    const { width, height } = this;
    const data = new Uint8ClampedArray(width * height * 1.5);
    const shift = (this.frameNumber++ * 4) % width;
    // Luma: diagonal stripes moving right; chroma: flat mid-grey.
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) data[y * width + x] = ((x + y + shift) & 0x3f) << 2;
    }
    data.fill(128, width * height);
    this.source.onFrame({ width, height, data: data as unknown as Uint8Array });
  }
}

/** A 440 Hz tone in 10 ms chunks, the frame size libwebrtc's audio pipeline expects. */
export class SyntheticAudioSource {
  readonly track: MediaStreamTrack;
  private readonly source = new wrtc.nonstandard.RTCAudioSource();
  private readonly timer: NodeJS.Timeout;
  private sampleIndex = 0;

  constructor() {
    this.track = this.source.createTrack() as unknown as MediaStreamTrack;
    this.timer = setInterval(() => this.pushChunk(), 10);
  }

  stop(): void {
    clearInterval(this.timer);
    this.track.stop();
  }

  private pushChunk(): void {
    const sampleRate = 48_000;
    const samples = new Int16Array(sampleRate / 100);
    for (let i = 0; i < samples.length; i++, this.sampleIndex++) {
      samples[i] = Math.round(8_000 * Math.sin((2 * Math.PI * 440 * this.sampleIndex) / sampleRate));
    }
    this.source.onData({
      samples,
      sampleRate,
      bitsPerSample: 16,
      channelCount: 1,
      numberOfFrames: samples.length,
    });
  }
}

/** Counts decoded frames delivered to a received video track (proof that pictures, not just bytes, arrive). */
export class VideoFrameCounter {
  frames = 0;
  lastWidth = 0;
  lastHeight = 0;
  private readonly sink: InstanceType<typeof wrtc.nonstandard.RTCVideoSink>;

  /** `onFrame` runs at each decoded frame (for gap measurements that polling would blur). */
  constructor(track: MediaStreamTrack, onFrame?: () => void) {
    this.sink = new wrtc.nonstandard.RTCVideoSink(track as never);
    this.sink.onframe = (event: { frame: { width: number; height: number } }) => {
      this.frames++;
      onFrame?.();
      this.lastWidth = event.frame.width;
      this.lastHeight = event.frame.height;
    };
  }

  stop(): void {
    this.sink.stop();
  }
}
