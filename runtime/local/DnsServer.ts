/**
 * An authoritative DNS server for one zone on UDP and TCP (same port), wire format by dns-packet. It knows
 * nothing about records: `answer` decides, this module frames, flags and sends.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet } from 'dns-packet';
import type { ZoneAnswer } from './dnsRecords';

/** Classic UDP limit for clients that send no EDNS OPT record. */
const PLAIN_UDP_LIMIT = 512;
/** What we advertise and honour at most over EDNS (the DNS flag day 2020 value). */
const EDNS_UDP_LIMIT = 1232;
const TCP_IDLE_TIMEOUT_MS = 10_000;
const BIND_ATTEMPTS = 10;

const OPCODE_BITS = 0xf << 11;
const RCODES = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4 } as const;

export type Transport = 'udp' | 'tcp';

export interface DnsQueryInfo {
  readonly name: string;
  readonly type: string;
  readonly source: string;
  readonly transport: Transport;
}

export type Answerer = (query: DnsQueryInfo) => ZoneAnswer;

export interface DnsServerOptions {
  readonly address: string;
  /** 0 picks a free port (the same for UDP and TCP). */
  readonly port: number;
  readonly answer: Answerer;
  /** Failures of the server itself; a bad packet is answered, not reported. */
  readonly onError?: (err: Error) => void;
}

export class DnsServer {
  private readonly sockets = new Set<net.Socket>();
  private closed = false;
  /**
   * A failed server drops every query, over UDP and TCP, without a word: what clients of a DNS
   * provider in an outage see (their resolver times out). Refusing or answering SERVFAIL would let
   * them give up at once, which is kinder than any real outage.
   */
  failed = false;
  /** Replies sent, for an outside check that a failed zone really answered nothing. */
  answered = 0;

  static async start(opts: DnsServerOptions): Promise<DnsServer> {
    for (let attempt = 1; ; attempt++) {
      const tcp = net.createServer();
      const udp = dgram.createSocket('udp4');
      try {
        await listenTcp(tcp, opts.address, opts.port);
        const port = (tcp.address() as net.AddressInfo).port;
        await bindUdp(udp, opts.address, port);
        return new DnsServer(opts, udp, tcp, port);
      } catch (err) {
        tcp.close();
        try {
          udp.close();
        } catch {
          // Never bound: nothing to release.
        }
        // With port 0 the free TCP port may be taken for UDP; pick another.
        const retry =
          opts.port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < BIND_ATTEMPTS;
        if (!retry) throw err;
      }
    }
  }

  private constructor(
    private readonly opts: DnsServerOptions,
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    readonly port: number,
  ) {
    udp.on('message', (msg, rinfo) => {
      if (this.failed) return;
      const reply = this.respond(msg, rinfo.address, 'udp');
      if (reply) {
        this.answered++;
        udp.send(reply, rinfo.port, rinfo.address);
      }
    });
    udp.on('error', (err) => opts.onError?.(err));
    tcp.on('connection', (socket) => this.serveTcp(socket));
    tcp.on('error', (err) => opts.onError?.(err));
  }

  get address(): string {
    return this.opts.address;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
      new Promise<void>((resolve) => {
        this.tcp.close(() => resolve());
        this.sockets.forEach((s) => s.destroy());
      }),
    ]);
  }

  /** RFC 7766 framing: each message is preceded by its length in two bytes; several may share a connection. */
  private serveTcp(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setTimeout(TCP_IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const message = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + message.length);
        // The connection is taken (a failing provider's edge may still accept) and the query read, unanswered.
        if (this.failed) continue;
        const reply = this.respond(message, socket.remoteAddress ?? '', 'tcp');
        if (!reply) {
          socket.destroy();
          return;
        }
        this.answered++;
        const length = Buffer.alloc(2);
        length.writeUInt16BE(reply.length);
        socket.write(Buffer.concat([length, reply]));
      }
    });
  }

  /** The encoded reply, or null when the message is not worth one (a response, or not even a header). */
  private respond(message: Buffer, source: string, transport: Transport): Buffer | null {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      if (message.length < 12) return null;
      return encodeError(message.readUInt16BE(0), message.readUInt16BE(2), 'FORMERR');
    }
    if (query.type === 'response') return null;
    const flags = query.flags ?? 0;
    if ((flags & OPCODE_BITS) !== 0) return encodeError(query.id ?? 0, flags, 'NOTIMP');
    const question = query.questions?.[0];
    if (!question || query.questions!.length !== 1) return encodeError(query.id ?? 0, flags, 'FORMERR');

    const zoneAnswer = this.opts.answer({
      name: question.name,
      type: question.type,
      source: source.replace(/^::ffff:/, ''),
      transport,
    });
    const edns = query.additionals?.find((a) => a.type === 'OPT');
    const response: Packet = {
      type: 'response',
      id: query.id,
      flags:
        (flags & dnsPacket.RECURSION_DESIRED) |
        (zoneAnswer.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) |
        RCODES[zoneAnswer.rcode],
      questions: [question],
      answers: zoneAnswer.answers,
      authorities: zoneAnswer.authorities,
      additionals: [...zoneAnswer.additionals, ...(edns ? [optRecord()] : [])],
    };
    const encoded = dnsPacket.encode(response);
    const limit =
      edns && 'udpPayloadSize' in edns
        ? Math.min(Math.max(edns.udpPayloadSize, PLAIN_UDP_LIMIT), EDNS_UDP_LIMIT)
        : PLAIN_UDP_LIMIT;
    if (transport === 'udp' && encoded.length > limit) {
      // Too big for this client over UDP: say so and let it retry over TCP.
      return dnsPacket.encode({
        ...response,
        flags: response.flags! | dnsPacket.TRUNCATED_RESPONSE,
        answers: [],
        authorities: [],
        additionals: [],
      });
    }
    return encoded;
  }
}

function encodeError(id: number, queryFlags: number, rcode: keyof typeof RCODES): Buffer {
  const flags = (queryFlags & (OPCODE_BITS | dnsPacket.RECURSION_DESIRED)) | RCODES[rcode];
  return dnsPacket.encode({
    type: 'response',
    id,
    flags,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  });
}

function optRecord(): Answer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: EDNS_UDP_LIMIT,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
}

function listenTcp(server: net.Server, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function bindUdp(socket: dgram.Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}
