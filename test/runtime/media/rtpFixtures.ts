/**
 * Real RTP over real UDP sockets for the pipe tests, without WebRTC peers: a sender that feeds a
 * PlainTransport producer like a client would, a receiver behind a PlainTransport consumer that parses
 * every packet it gets, and a relay between two pipe ends that can drop everything (a blackholed path).
 *
 * Every packet carries a counter in its last four payload bytes, so the receiver proves that the
 * sender's packets (not just some bytes) crossed the pipe.
 */
import * as dgram from 'node:dgram';
import type {
  MediaKind,
  MsConsumer,
  MsProducer,
  MsRouter,
  PipeEndpoint,
} from '../../../runtime/media/engine';

/** The slice of a PlainTransport the fixtures use; both mediasoup versions accept `listenIp`. */
interface PlainTransport {
  readonly tuple: { readonly localIp?: string; readonly localAddress?: string; readonly localPort: number };
  close(): void;
  connect(args: { ip: string; port: number }): Promise<void>;
  produce(args: { kind: MediaKind; rtpParameters: Record<string, unknown> }): Promise<MsProducer>;
  consume(args: { producerId: string; rtpCapabilities: unknown; paused?: boolean }): Promise<MsConsumer>;
}

interface PlainRouter {
  createPlainTransport(options: {
    listenIp: string;
    comedia?: boolean;
    rtcpMux?: boolean;
  }): Promise<PlainTransport>;
}

const VIDEO_PAYLOAD_TYPE = 101;
const AUDIO_PAYLOAD_TYPE = 100;

/**
 * A VP8 key frame start: payload descriptor with the X bit and a two-byte picture id (mediasoup 3.8
 * parses VP8 only with the extended descriptor, and forwards nothing to a new consumer before a key
 * frame), then a key frame header (P bit clear, start code, 320x240).
 */
const VP8_KEY_FRAME = Buffer.from([
  0x90, 0x80, 0x80, 0x01, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00,
]);
const OPUS_FRAME = Buffer.from([0xf8, 0x01, 0x02, 0x03]);

export function rtpPacket(
  payloadType: number,
  seq: number,
  timestamp: number,
  ssrc: number,
  payload: Buffer,
) {
  const header = Buffer.alloc(12);
  header[0] = 0x80;
  header[1] = payloadType;
  header.writeUInt16BE(seq & 0xffff, 2);
  header.writeUInt32BE(timestamp >>> 0, 4);
  header.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([header, payload]);
}

/** An RTP packet's payload, past CSRCs and header extensions, without padding. */
export function rtpPayload(packet: Buffer): Buffer | undefined {
  if (packet.length < 12 || packet[0] >> 6 !== 2) return undefined;
  let offset = 12 + 4 * (packet[0] & 0x0f);
  if (packet[0] & 0x10) {
    if (packet.length < offset + 4) return undefined;
    offset += 4 + 4 * packet.readUInt16BE(offset + 2);
  }
  const padding = packet[0] & 0x20 ? packet[packet.length - 1] : 0;
  if (packet.length - padding < offset) return undefined;
  return packet.subarray(offset, packet.length - padding);
}

async function bind(ip: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, ip, () => resolve());
  });
  return socket;
}

function endpointOf(transport: PlainTransport): PipeEndpoint {
  return { ip: (transport.tuple.localAddress ?? transport.tuple.localIp)!, port: transport.tuple.localPort };
}

/** A client sending RTP into a PlainTransport producer (comedia: mediasoup answers to where it came from). */
export class RtpSender {
  sent = 0;
  private timer: NodeJS.Timeout | undefined;

  static async start(router: MsRouter, kind: MediaKind, listenIp: string): Promise<RtpSender> {
    const transport = await (router as unknown as PlainRouter).createPlainTransport({
      listenIp,
      comedia: true,
      rtcpMux: true,
    });
    const ssrc = 10_000 + Math.floor(Math.random() * 1_000_000);
    const codec =
      kind === 'video'
        ? { mimeType: 'video/VP8', payloadType: VIDEO_PAYLOAD_TYPE, clockRate: 90_000 }
        : { mimeType: 'audio/opus', payloadType: AUDIO_PAYLOAD_TYPE, clockRate: 48_000, channels: 2 };
    const producer = await transport.produce({
      kind,
      rtpParameters: { codecs: [codec], encodings: [{ ssrc }] },
    });
    const socket = await bind(listenIp);
    return new RtpSender(kind, transport, producer, socket, ssrc);
  }

  private constructor(
    readonly kind: MediaKind,
    private readonly transport: PlainTransport,
    readonly producer: MsProducer,
    private readonly socket: dgram.Socket,
    private readonly ssrc: number,
  ) {
    // 25 packets a second: a video key frame every 40 ms, or an audio frame every 40 ms.
    this.timer = setInterval(() => this.send(), 40);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.socket.close();
    this.transport.close();
  }

  private send(): void {
    const n = ++this.sent;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(n);
    const video = this.kind === 'video';
    const payload = Buffer.concat([video ? VP8_KEY_FRAME : OPUS_FRAME, counter]);
    const packet = rtpPacket(
      video ? VIDEO_PAYLOAD_TYPE : AUDIO_PAYLOAD_TYPE,
      n,
      n * (video ? 3_600 : 1_920),
      this.ssrc,
      payload,
    );
    const { ip, port } = endpointOf(this.transport);
    this.socket.send(packet, port, ip);
  }
}

/** A client receiving one producer through a PlainTransport consumer, keeping the counters it got. */
export class RtpReceiver {
  readonly counters: number[] = [];

  static async start(router: MsRouter, producerId: string, listenIp: string): Promise<RtpReceiver> {
    const socket = await bind(listenIp);
    const transport = await (router as unknown as PlainRouter).createPlainTransport({
      listenIp,
      rtcpMux: true,
    });
    const { port } = socket.address();
    await transport.connect({ ip: listenIp, port });
    const consumer = await transport.consume({ producerId, rtpCapabilities: router.rtpCapabilities });
    return new RtpReceiver(socket, transport, consumer);
  }

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly transport: PlainTransport,
    readonly consumer: MsConsumer,
  ) {
    // Only the media stream: the port also gets RTCP (rtcp-mux), RTX and mediasoup's probation packets.
    const ssrc = (consumer.rtpParameters as { encodings: Array<{ ssrc: number }> }).encodings[0].ssrc;
    socket.on('message', (packet) => {
      if (packet.length < 12 || packet.readUInt32BE(8) !== ssrc) return;
      const payload = rtpPayload(packet);
      if (payload && payload.length >= 4) this.counters.push(payload.readUInt32BE(payload.length - 4));
    });
  }

  get received(): number {
    return this.counters.length;
  }

  stop(): void {
    this.socket.close();
    this.transport.close();
  }
}

/**
 * A UDP relay between two pipe ends, so a test can blackhole the path while both workers live. Side A
 * connects its pipe to `forA` and side B to `forB`; each end then receives from the address it connected
 * to, as a PipeTransport requires.
 */
export class UdpRelay {
  blackhole = false;
  private ends: { a: PipeEndpoint; b: PipeEndpoint } | undefined;

  static async start(ipFacingA: string, ipFacingB: string): Promise<UdpRelay> {
    return new UdpRelay(await bind(ipFacingA), await bind(ipFacingB));
  }

  private constructor(
    private readonly socketA: dgram.Socket,
    private readonly socketB: dgram.Socket,
  ) {
    socketA.on('message', (packet) => {
      if (!this.blackhole && this.ends) socketB.send(packet, this.ends.b.port, this.ends.b.ip);
    });
    socketB.on('message', (packet) => {
      if (!this.blackhole && this.ends) socketA.send(packet, this.ends.a.port, this.ends.a.ip);
    });
  }

  /** Where side A sends (its pipe connects here). */
  get forA(): PipeEndpoint {
    const { address, port } = this.socketA.address();
    return { ip: address, port };
  }

  /** Where side B sends. */
  get forB(): PipeEndpoint {
    const { address, port } = this.socketB.address();
    return { ip: address, port };
  }

  /** The two pipes' own endpoints, where the relay delivers. */
  relayBetween(a: PipeEndpoint, b: PipeEndpoint): void {
    this.ends = { a, b };
  }

  close(): void {
    this.socketA.close();
    this.socketB.close();
  }
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
