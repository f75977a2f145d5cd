/**
 * What each engine asks its mediasoup for when it creates a pipe, on recording fakes of the two modules:
 * 3.27 (production, not runnable on this Node) gets `listenInfo` with the pipe port range, 3.8 gets
 * `listenIp`; both get SRTP and RTX. The real 3.8 is exercised in pipeLink.test.ts.
 */
import { createCurrentWorker, type CurrentModule } from '../../../runtime/media/engine/currentEngine';
import { createLegacyWorker, type LegacyModule } from '../../../runtime/media/engine/legacyEngine';
import {
  pipeEndpoint,
  type MsPipeTransport,
  type MsRouter,
  type WorkerSettings,
} from '../../../runtime/media/engine';

const SETTINGS: WorkerSettings = {
  index: 0,
  logLevel: 'warn',
  rtcMinPort: 40_000,
  rtcMaxPort: 40_099,
  listenIp: '10.0.1.5',
  announcedIp: '203.0.113.7',
};
const PIPE_PORTS = { min: 41_000, max: 41_999 };

/** A router that records the options of every pipe transport asked of it. */
function recordingRouter(): { router: MsRouter; options: Array<Record<string, unknown>> } {
  const options: Array<Record<string, unknown>> = [];
  const router = {
    id: 'router-1',
    createPipeTransport: async (opts: Record<string, unknown>) => {
      options.push(opts);
      return {} as MsPipeTransport;
    },
  } as unknown as MsRouter;
  return { router, options };
}

const fakeWorker = {
  pid: 4242,
  closed: false,
  close() {},
  on() {},
  createWebRtcServer: async () => ({ id: 'server-1', close() {} }),
};

test('3.27: a pipe listens with listenInfo on the worker address, announces the public one, binds in the pipe range', async () => {
  const mediasoup = { version: '3.27.1', createWorker: async () => fakeWorker } as unknown as CurrentModule;
  const worker = await createCurrentWorker(mediasoup, '/opt/mediasoup-worker', SETTINGS);
  const { router, options } = recordingRouter();
  await worker.createPipeTransport(router, { portRange: PIPE_PORTS });
  expect(options).toEqual([
    {
      listenInfo: {
        protocol: 'udp',
        ip: '10.0.1.5',
        announcedAddress: '203.0.113.7',
        portRange: { min: 41_000, max: 41_999 },
      },
      enableSrtp: true,
      enableRtx: true,
    },
  ]);
});

test('3.8: a pipe listens with listenIp and takes its port from the worker range', async () => {
  const mediasoup = { version: '3.8.4', createWorker: async () => fakeWorker } as unknown as LegacyModule;
  const worker = await createLegacyWorker(mediasoup, SETTINGS);
  const { router, options } = recordingRouter();
  await worker.createPipeTransport(router, { portRange: PIPE_PORTS });
  expect(options).toEqual([
    { listenIp: { ip: '10.0.1.5', announcedIp: '203.0.113.7' }, enableSrtp: true, enableRtx: true },
  ]);
  await expect(worker.createPipeTransport(router, { portRange: { min: 0, max: 10 } })).rejects.toThrow(
    'pipe port range 0-10 is not a range of UDP ports',
  );
});

test("a pipe's endpoint is 3.27's localAddress, or 3.8's localIp", () => {
  const transport = (tuple: MsPipeTransport['tuple']) => ({ id: 'pipe-1', tuple }) as MsPipeTransport;
  expect(pipeEndpoint(transport({ localIp: '203.0.113.7', localPort: 41_001 }))).toEqual({
    ip: '203.0.113.7',
    port: 41_001,
  });
  expect(
    pipeEndpoint(transport({ localIp: '203.0.113.7', localAddress: '203.0.113.8', localPort: 41_002 })),
  ).toEqual({ ip: '203.0.113.8', port: 41_002 });
  expect(() => pipeEndpoint(transport({ localPort: 1 }))).toThrow(
    'pipe transport "pipe-1" reports no local address',
  );
});
