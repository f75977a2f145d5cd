/**
 * A pipe's keepalive stream: a tiny Opus packet every KEEPALIVE_INTERVAL_MS from a DirectTransport
 * producer on the local router. PipeLink pipes it to the remote like any producer and never pauses it,
 * so the remote hears this leg whatever the room does, and silence on the pipe means the leg or the
 * path is gone.
 *
 * Why media alone cannot tell: a pipe consumer forwards no RTP while its producer is paused, and what
 * mediasoup keeps sending then is RTCP on its own schedule (measured on 3.8.4: a sender report every
 * 1-1.5 s per video stream, about every 5 s per audio stream, and nothing for a stream that never
 * carried a packet). A one-second silence window would call every paused or muted room dead.
 *
 * Cost per pipe and direction: 5 packets a second of 15 bytes of RTP (about 2 kbit/s with SRTP and
 * UDP/IP headers), and 5 `trace` notifications a second from the remote's worker.
 */
import { randomInt } from 'node:crypto';
import type { MsDirectProducer, MsDirectTransport, MsRouter } from './engine';

/** A fifth of the default silence window: four lost keepalives in a row never look like a dead leg. */
export const KEEPALIVE_INTERVAL_MS = 200;

/** Any dynamic payload type; the remote maps it through the pipe parameters like any stream's. */
const KEEPALIVE_PAYLOAD_TYPE = 100;
const OPUS_CLOCK_RATE = 48_000;
/**
 * An Opus packet with a TOC byte (config 31, one frame) and two bytes of frame. Not one byte long:
 * mediasoup 3.27 takes a TOC-only Opus packet for DTX, which consumers may be told to drop.
 */
const KEEPALIVE_PAYLOAD = Buffer.from([0xf8, 0xff, 0xfe]);

export class PipeKeepalive {
  private timer: NodeJS.Timeout | undefined;
  private sequenceNumber = randomInt(0, 0x1_0000);
  private timestamp = randomInt(0, 0x1_0000_0000);

  static async create(router: MsRouter): Promise<PipeKeepalive> {
    const transport = await router.createDirectTransport();
    const ssrc = randomInt(1, 0x1_0000_0000);
    try {
      const producer = await transport.produce({
        kind: 'audio',
        rtpParameters: {
          codecs: [
            {
              mimeType: 'audio/opus',
              payloadType: KEEPALIVE_PAYLOAD_TYPE,
              clockRate: OPUS_CLOCK_RATE,
              channels: 2,
            },
          ],
          encodings: [{ ssrc }],
        },
      });
      return new PipeKeepalive({ transport, producer, ssrc });
    } catch (err) {
      transport.close();
      throw new Error(
        `cannot create a pipe keepalive stream on router "${router.id}" (its codecs must include audio/opus): ` +
          (err as Error).message,
        { cause: err },
      );
    }
  }

  private readonly transport: MsDirectTransport;
  readonly producer: MsDirectProducer;
  private readonly ssrc: number;

  private constructor(parts: {
    readonly transport: MsDirectTransport;
    readonly producer: MsDirectProducer;
    readonly ssrc: number;
  }) {
    this.transport = parts.transport;
    this.producer = parts.producer;
    this.ssrc = parts.ssrc;
  }

  /** Starts sending (idempotent). */
  start(): void {
    if (this.timer || this.transport.closed) return;
    this.timer = setInterval(() => this.send(), KEEPALIVE_INTERVAL_MS);
    this.timer.unref();
    this.send();
  }

  /** Stops sending and closes the stream's transport (its pipe consumers close with it). Idempotent. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.transport.close();
  }

  private send(): void {
    if (this.producer.closed) {
      this.close();
      return;
    }
    const packet = Buffer.alloc(12 + KEEPALIVE_PAYLOAD.length);
    packet[0] = 0x80; // RTP version 2, no padding, no extension, no CSRC
    packet[1] = KEEPALIVE_PAYLOAD_TYPE;
    packet.writeUInt16BE(this.sequenceNumber, 2);
    packet.writeUInt32BE(this.timestamp, 4);
    packet.writeUInt32BE(this.ssrc, 8);
    KEEPALIVE_PAYLOAD.copy(packet, 12);
    this.sequenceNumber = (this.sequenceNumber + 1) & 0xffff;
    this.timestamp = (this.timestamp + (OPUS_CLOCK_RATE * KEEPALIVE_INTERVAL_MS) / 1000) >>> 0;
    this.producer.send(packet);
  }
}
