/**
 * Real DNS queries from a chosen source address (a client "located" in a region), over UDP or TCP,
 * encoded and decoded with dns-packet so tests can read flags, rcodes and every section.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { DecodedPacket, RecordType, StringAnswer } from 'dns-packet';

/** dns-packet decodes the rcode too; its types leave it out. */
export type DnsReply = DecodedPacket & { readonly rcode: string };

export interface QueryTarget {
  readonly server: string;
  readonly port: number;
  /** Source address the query leaves from. */
  readonly from: string;
}

function encodeQuery(name: string, type: RecordType, id: number): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
  });
}

export function queryUdp(
  target: QueryTarget,
  name: string,
  type: RecordType = 'A',
  timeoutMs = 2_000,
): Promise<DnsReply> {
  const id = Math.floor(Math.random() * 65_535);
  const socket = dgram.createSocket('udp4');
  return new Promise<DnsReply>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no UDP answer for ${name} from ${target.server}:${target.port}`)),
      timeoutMs,
    );
    socket.on('error', reject);
    socket.on('message', (msg) => {
      const packet = dnsPacket.decode(msg) as DnsReply;
      if (packet.id !== id) return;
      clearTimeout(timer);
      resolve(packet);
    });
    socket.bind(0, target.from, () => socket.send(encodeQuery(name, type, id), target.port, target.server));
  }).finally(() => socket.close());
}

export function queryTcp(
  target: QueryTarget,
  name: string,
  type: RecordType = 'A',
  timeoutMs = 2_000,
): Promise<DnsReply> {
  const id = Math.floor(Math.random() * 65_535);
  const socket = net.connect({ host: target.server, port: target.port, localAddress: target.from });
  return new Promise<DnsReply>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no TCP answer for ${name} from ${target.server}:${target.port}`)),
      timeoutMs,
    );
    let received = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('connect', () =>
      socket.write(
        dnsPacket.streamEncode({
          type: 'query',
          id,
          flags: dnsPacket.RECURSION_DESIRED,
          questions: [{ type, name, class: 'IN' }],
        }),
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2 || received.length < 2 + received.readUInt16BE(0)) return;
      clearTimeout(timer);
      resolve(dnsPacket.decode(received.subarray(2, 2 + received.readUInt16BE(0))) as DnsReply);
    });
  }).finally(() => socket.destroy());
}

export function addressesIn(packet: DecodedPacket): string[] {
  return (packet.answers ?? []).filter((a): a is StringAnswer => a.type === 'A').map((a) => a.data);
}
