/**
 * A tiny authoritative DNS server over UDP for the client tests: A records with TTLs, NXDOMAIN for
 * the rest, and a log of who asked what (the Route 53 emulator locates clients by source address).
 */
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as dnsPacket from 'dns-packet';

export interface TestDnsServer {
  /** `127.0.0.1:port`, the form the client config takes. */
  readonly address: string;
  readonly records: Map<string, { addresses: string[]; ttl: number }>;
  readonly queries: Array<{ name: string; type: string; from: string }>;
  close(): Promise<void>;
}

export async function startDnsServer(
  records: Record<string, { addresses: string[]; ttl: number }>,
): Promise<TestDnsServer> {
  const socket = dgram.createSocket('udp4');
  const table = new Map(Object.entries(records));
  const queries: TestDnsServer['queries'] = [];
  socket.on('message', (msg, rinfo) => {
    const query = dnsPacket.decode(msg);
    const question = query.questions?.[0];
    if (!question) return;
    queries.push({ name: question.name, type: question.type, from: rinfo.address });
    const record = question.type === 'A' ? table.get(question.name.toLowerCase()) : undefined;
    const known = table.has(question.name.toLowerCase());
    const answer = dnsPacket.encode({
      id: query.id,
      type: 'response',
      // The low 4 bits of the flags are the RCODE: 3 is NXDOMAIN.
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (known ? 0 : 3),
      questions: [question],
      answers: (record?.addresses ?? []).map((data) => ({
        type: 'A',
        name: question.name,
        ttl: record!.ttl,
        class: 'IN',
        data,
      })),
    });
    socket.send(answer, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    records: table,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
