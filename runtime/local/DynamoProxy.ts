/**
 * A region's public DynamoDB endpoint: a small HTTP proxy in front of that region's dynalite. Reads pass
 * straight through; writes go through `onWrite`, which wraps the forwarding so the replica can read the
 * written item back and queue it for the other regions.
 *
 * The endpoint can be taken down for dead-region tests: `refuse` stops listening (clients get
 * ECONNREFUSED at once), `blackhole` accepts requests and never answers (clients hit their timeouts).
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WRITE_OPERATIONS, operationOf } from './writtenKeys';

/** dynalite's own limit; a bigger body is a client error, not a reason to buffer without bound. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
const HOP_BY_HOP_HEADERS = ['connection', 'keep-alive', 'transfer-encoding'];

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export type WriteHandler = (
  operation: string,
  body: Buffer,
  forward: () => Promise<UpstreamResponse>,
) => Promise<UpstreamResponse>;

export type EndpointState = 'up' | 'refusing' | 'blackholed';

export interface DynamoProxyOptions {
  readonly address: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Base URL of the region's dynalite. */
  readonly upstream: string;
  readonly onWrite: WriteHandler;
}

export class DynamoProxy {
  private readonly server: http.Server;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly upstream: URL;
  private readonly heldSockets = new Set<Socket>();
  private boundPort = 0;
  private currentState: EndpointState = 'up';

  static async start(opts: DynamoProxyOptions): Promise<DynamoProxy> {
    const proxy = new DynamoProxy(opts);
    await proxy.listen(opts.port);
    return proxy;
  }

  private constructor(private readonly opts: DynamoProxyOptions) {
    this.upstream = new URL(opts.upstream);
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  get url(): string {
    return `http://${this.opts.address}:${this.boundPort}`;
  }

  get state(): EndpointState {
    return this.currentState;
  }

  /** Stops listening and drops open connections: the endpoint is dead. */
  async refuse(): Promise<void> {
    this.dropHeld();
    if (this.currentState !== 'refusing') await this.stopListening();
    this.currentState = 'refusing';
  }

  /** Keeps accepting but never answers: the endpoint is unreachable. */
  async blackhole(): Promise<void> {
    if (this.currentState === 'refusing') await this.listen(this.boundPort);
    this.server.closeAllConnections();
    this.currentState = 'blackholed';
  }

  /** Back to normal; requests held by a blackhole are dropped (their clients gave up long ago). */
  async restore(): Promise<void> {
    this.dropHeld();
    if (this.currentState === 'refusing') await this.listen(this.boundPort);
    this.currentState = 'up';
  }

  async close(): Promise<void> {
    this.dropHeld();
    if (this.currentState !== 'refusing') await this.stopListening();
    this.currentState = 'refusing';
    this.agent.destroy();
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, this.opts.address, () => {
        this.server.off('error', reject);
        this.boundPort = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private stopListening(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private dropHeld(): void {
    for (const socket of this.heldSockets) socket.destroy();
    this.heldSockets.clear();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.currentState === 'blackholed') {
      this.heldSockets.add(req.socket);
      req.socket.once('close', () => this.heldSockets.delete(req.socket));
      req.resume();
      return;
    }
    try {
      const body = await readBody(req);
      const operation = operationOf(req.headers['x-amz-target']);
      const forward = () => this.forward(req, body);
      const upstream =
        operation && WRITE_OPERATIONS.has(operation)
          ? await this.opts.onWrite(operation, body, forward)
          : await forward();
      const headers = { ...upstream.headers };
      for (const name of HOP_BY_HOP_HEADERS) delete headers[name];
      res.writeHead(upstream.status, headers).end(upstream.body);
    } catch (err) {
      const tooLarge = err instanceof RequestTooLargeError;
      res.writeHead(tooLarge ? 413 : 500, { 'content-type': 'application/x-amz-json-1.0' }).end(
        JSON.stringify({
          __type: `com.amazonaws.dynamodb.v20120810#${tooLarge ? 'ValidationException' : 'InternalServerError'}`,
          message: `local DynamoDB emulator: ${(err as Error).message}`,
        }),
      );
    }
  }

  private forward(req: http.IncomingMessage, body: Buffer): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      const upstreamReq = http.request(
        {
          host: this.upstream.hostname,
          port: this.upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent: this.agent,
        },
        (upstreamRes) => {
          const chunks: Buffer[] = [];
          upstreamRes.on('data', (c: Buffer) => chunks.push(c));
          upstreamRes.on('end', () =>
            resolve({
              status: upstreamRes.statusCode ?? 500,
              headers: upstreamRes.headers,
              body: Buffer.concat(chunks),
            }),
          );
          upstreamRes.on('error', reject);
        },
      );
      upstreamReq.on('error', reject);
      upstreamReq.end(body);
    });
  }
}

class RequestTooLargeError extends Error {}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        req.destroy();
        reject(new RequestTooLargeError(`request body exceeds ${MAX_REQUEST_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
