/**
 * A small TURN client (RFC 5766 over RFC 5389 STUN, long-term credentials) for tests: UDP, TCP or TLS
 * to the server; Allocate, Refresh, CreatePermission, Send and Data indications. It reports the
 * server's error codes as they are (401, 403, 437, ...), which `turnutils_uclient` folds into one
 * "Cannot complete Allocation", and it lets a test send to a peer without asking for a permission
 * first.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as tls from 'node:tls';

const MAGIC_COOKIE = 0x2112a442;
const METHOD = { allocate: 0x003, refresh: 0x004, send: 0x006, data: 0x007, createPermission: 0x008 };
const CLASS = { request: 0x000, indication: 0x010, success: 0x100, error: 0x110 };
const ATTR = {
  username: 0x0006,
  messageIntegrity: 0x0008,
  errorCode: 0x0009,
  lifetime: 0x000d,
  xorPeerAddress: 0x0012,
  data: 0x0013,
  realm: 0x0014,
  nonce: 0x0015,
  xorRelayedAddress: 0x0016,
  requestedTransport: 0x0019,
  xorMappedAddress: 0x0020,
};
const UDP_TRANSPORT = 17;
const REQUEST_TIMEOUT_MS = 3_000;

export interface Address {
  readonly address: string;
  readonly port: number;
}

/** An error response of the server: `code` is the STUN error code (401, 403, 437, 438, 486, ...). */
export class TurnErrorResponse extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    readonly reason: string,
  ) {
    super(`${method}: ${code} ${reason}`);
    this.name = 'TurnErrorResponse';
  }
}

interface Message {
  readonly method: number;
  readonly klass: number;
  readonly transactionId: Buffer;
  readonly attributes: Map<number, Buffer>;
}

export interface TurnClientOptions {
  readonly transport: 'udp' | 'tcp' | 'tls';
  readonly host: string;
  readonly port: number;
  /** TLS: the certificate(s) to trust (the relay's self-signed one). */
  readonly ca?: string | Buffer;
  /** UDP: the local address to send from. */
  readonly localAddress?: string;
}

interface Auth {
  username: string;
  key: Buffer;
  realm: string;
  nonce: string;
}

export class TurnClient {
  private readonly pending = new Map<string, (m: Message) => void>();
  private readonly dataListeners: ((from: Address, data: Buffer) => void)[] = [];
  private auth: Auth | undefined;
  private allocated = false;
  private streamBuffer = Buffer.alloc(0);

  private constructor(
    private readonly write: (buf: Buffer) => void,
    private readonly closeTransport: () => void,
  ) {}

  static async connect(opts: TurnClientOptions): Promise<TurnClient> {
    if (opts.transport === 'udp') {
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, opts.localAddress, () => resolve());
      });
      const client = new TurnClient(
        (buf) => socket.send(buf, opts.port, opts.host),
        () => socket.close(),
      );
      socket.on('message', (msg) => client.onMessage(msg));
      return client;
    }
    const stream = await new Promise<net.Socket>((resolve, reject) => {
      const s =
        opts.transport === 'tls'
          ? tls.connect({ host: opts.host, port: opts.port, ca: opts.ca }, () => resolve(s))
          : net.connect({ host: opts.host, port: opts.port }, () => resolve(s));
      s.once('error', reject);
    });
    const client = new TurnClient(
      (buf) => stream.write(buf),
      () => stream.destroy(),
    );
    stream.on('error', () => undefined);
    stream.on('data', (chunk: Buffer) => client.onStreamData(chunk));
    return client;
  }

  /**
   * Deletes the allocation, if any (a Refresh with lifetime 0, RFC 5766 section 7), then closes the
   * transport. Without it the relay keeps the allocation for its lifetime, and a later client that the
   * kernel hands the same UDP source port meets it: 437 Allocation Mismatch instead of a 401 challenge.
   */
  async close(): Promise<void> {
    if (this.allocated) {
      this.allocated = false;
      // Best effort: a relay that is gone or refuses only keeps the allocation until it expires.
      await this.authenticated(METHOD.refresh, [[ATTR.lifetime, u32(0)]]).catch(() => undefined);
    }
    this.closeTransport();
  }

  /** Allocates a UDP relay with long-term credentials; resolves with the relayed address. */
  async allocate(username: string, password: string, lifetimeSeconds?: number): Promise<Address> {
    const attrs: [number, Buffer][] = [[ATTR.requestedTransport, Buffer.from([UDP_TRANSPORT, 0, 0, 0])]];
    if (lifetimeSeconds !== undefined) attrs.push([ATTR.lifetime, u32(lifetimeSeconds)]);
    // The first request carries no credential: the server answers 401 with its realm and a nonce.
    const challenge = await this.request(METHOD.allocate, attrs, false);
    if (challenge.klass !== CLASS.error || errorOf(challenge).code !== 401) {
      const got =
        challenge.klass === CLASS.error
          ? `${errorOf(challenge).code} ${errorOf(challenge).reason}`
          : `class 0x${challenge.klass.toString(16)}`;
      throw new Error(`expected a 401 challenge to the unauthenticated Allocate, got ${got}`);
    }
    const realm = challenge.attributes.get(ATTR.realm)!.toString('utf8');
    const nonce = challenge.attributes.get(ATTR.nonce)!.toString('utf8');
    this.auth = {
      username,
      realm,
      nonce,
      key: createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest(),
    };
    const answer = this.expectSuccess('Allocate', await this.authenticated(METHOD.allocate, attrs));
    this.allocated = true;
    return readXorAddress(answer.attributes.get(ATTR.xorRelayedAddress)!);
  }

  /** Refreshes the allocation; resolves with the lifetime the server granted. */
  async refresh(lifetimeSeconds = 600): Promise<number> {
    const answer = this.expectSuccess(
      'Refresh',
      await this.authenticated(METHOD.refresh, [[ATTR.lifetime, u32(lifetimeSeconds)]]),
    );
    return answer.attributes.get(ATTR.lifetime)?.readUInt32BE(0) ?? 0;
  }

  /** Asks for a permission towards `address` (any port, RFC 5766 section 9). */
  async createPermission(address: string): Promise<void> {
    this.expectSuccess(
      'CreatePermission',
      await this.authenticated(METHOD.createPermission, [
        [ATTR.xorPeerAddress, xorAddress({ address, port: 0 })],
      ]),
    );
  }

  /** A Send indication: the relay forwards `data` to `peer` if it holds a permission for it. */
  send(peer: Address, data: Buffer): void {
    this.write(
      encode(METHOD.send, CLASS.indication, randomBytes(12), [
        [ATTR.xorPeerAddress, xorAddress(peer)],
        [ATTR.data, data],
      ]),
    );
  }

  /** Data indications: what peers sent to the relayed address. */
  onData(listener: (from: Address, data: Buffer) => void): void {
    this.dataListeners.push(listener);
  }

  private async authenticated(method: number, attrs: [number, Buffer][]): Promise<Message> {
    let answer = await this.request(method, attrs, true);
    // 438 Stale Nonce: the server hands out a new nonce; a real client retries with it (RFC 5389 10.2.3).
    if (answer.klass === CLASS.error && errorOf(answer).code === 438) {
      this.auth!.nonce = answer.attributes.get(ATTR.nonce)!.toString('utf8');
      answer = await this.request(method, attrs, true);
    }
    return answer;
  }

  private expectSuccess(what: string, m: Message): Message {
    if (m.klass === CLASS.success) return m;
    const { code, reason } = errorOf(m);
    throw new TurnErrorResponse(what, code, reason);
  }

  private request(method: number, attrs: [number, Buffer][], withAuth: boolean): Promise<Message> {
    const transactionId = randomBytes(12);
    const all = [...attrs];
    if (withAuth) {
      const auth = this.auth!;
      all.push(
        [ATTR.username, Buffer.from(auth.username, 'utf8')],
        [ATTR.realm, Buffer.from(auth.realm, 'utf8')],
        [ATTR.nonce, Buffer.from(auth.nonce, 'utf8')],
      );
    }
    const message = encode(method, CLASS.request, transactionId, all, withAuth ? this.auth!.key : undefined);
    return new Promise((resolve, reject) => {
      const key = transactionId.toString('hex');
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new Error(`no answer to TURN method 0x${method.toString(16)} in ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(key, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      this.write(message);
    });
  }

  private onStreamData(chunk: Buffer): void {
    // Over TCP and TLS, STUN messages follow each other on the stream; each header gives its length.
    this.streamBuffer = Buffer.concat([this.streamBuffer, chunk]);
    while (this.streamBuffer.length >= 20) {
      const total = 20 + this.streamBuffer.readUInt16BE(2);
      if (this.streamBuffer.length < total) return;
      this.onMessage(this.streamBuffer.subarray(0, total));
      this.streamBuffer = this.streamBuffer.subarray(total);
    }
  }

  private onMessage(buf: Buffer): void {
    const m = decode(buf);
    if (!m) return;
    if (m.method === METHOD.data && m.klass === CLASS.indication) {
      const from = readXorAddress(m.attributes.get(ATTR.xorPeerAddress)!);
      const data = m.attributes.get(ATTR.data) ?? Buffer.alloc(0);
      for (const listener of this.dataListeners) listener(from, data);
      return;
    }
    const key = m.transactionId.toString('hex');
    const resolve = this.pending.get(key);
    if (resolve) {
      this.pending.delete(key);
      resolve(m);
    }
  }
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value, 0);
  return b;
}

function encode(
  method: number,
  klass: number,
  transactionId: Buffer,
  attrs: [number, Buffer][],
  integrityKey?: Buffer,
): Buffer {
  const body = Buffer.concat(
    attrs.map(([type, value]) => {
      const header = Buffer.alloc(4);
      header.writeUInt16BE(type, 0);
      header.writeUInt16BE(value.length, 2);
      return Buffer.concat([header, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
    }),
  );
  const type = (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | klass;
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  if (!integrityKey) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  // MESSAGE-INTEGRITY covers everything before it, with the length already counting its own 24 bytes.
  header.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac('sha1', integrityKey)
    .update(Buffer.concat([header, body]))
    .digest();
  const attr = Buffer.alloc(4);
  attr.writeUInt16BE(ATTR.messageIntegrity, 0);
  attr.writeUInt16BE(20, 2);
  return Buffer.concat([header, body, attr, mac]);
}

function decode(buf: Buffer): Message | undefined {
  if (buf.length < 20 || (buf[0]! & 0xc0) !== 0 || buf.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  const type = buf.readUInt16BE(0);
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const klass = type & 0x0110;
  const attributes = new Map<number, Buffer>();
  let offset = 20;
  const end = 20 + buf.readUInt16BE(2);
  while (offset + 4 <= end) {
    const attrType = buf.readUInt16BE(offset);
    const length = buf.readUInt16BE(offset + 2);
    if (!attributes.has(attrType)) attributes.set(attrType, buf.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length + ((4 - (length % 4)) % 4);
  }
  return { method, klass, transactionId: buf.subarray(8, 20), attributes };
}

function errorOf(m: Message): { code: number; reason: string } {
  const value = m.attributes.get(ATTR.errorCode);
  if (!value) return { code: 0, reason: 'no ERROR-CODE' };
  return { code: (value[2]! & 0x07) * 100 + value[3]!, reason: value.subarray(4).toString('utf8') };
}

function xorAddress(peer: Address): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(0x01, 1); // IPv4
  b.writeUInt16BE(peer.port ^ (MAGIC_COOKIE >>> 16), 2);
  const octets = peer.address.split('.').map(Number);
  const ip = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  b.writeUInt32BE((ip ^ MAGIC_COOKIE) >>> 0, 4);
  return b;
}

function readXorAddress(value: Buffer): Address {
  if (value.readUInt8(1) !== 0x01) throw new Error('only IPv4 addresses are decoded here');
  const port = value.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16);
  const ip = (value.readUInt32BE(4) ^ MAGIC_COOKIE) >>> 0;
  return { address: [24, 16, 8, 0].map((s) => (ip >>> s) & 0xff).join('.'), port };
}
