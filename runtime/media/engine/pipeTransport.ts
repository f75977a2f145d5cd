/**
 * PipeTransports between legs of a room, in engine-neutral terms. The engines build the version's
 * options (3.8 `listenIp`, 3.27 `listenInfo`); this module holds what both share and reads the one field
 * whose name differs (`tuple.localIp` vs `tuple.localAddress`).
 */
import type { MsPipeTransport } from './types';

export interface PortRange {
  readonly min: number;
  readonly max: number;
}

export interface PipeTransportSettings {
  /**
   * UDP ports a pipe may bind, open to the other regions like the WebRTC ports. Applied on 3.27
   * (`listenInfo.portRange`). 3.8 cannot give one transport a range: its pipes take ports from the
   * worker's RTC range (`rtcMinPort`-`rtcMaxPort`), which is what the local stack and tests open.
   */
  readonly portRange: PortRange;
}

/** Where a pipe receives: the worker's announced address (its public IP) and the bound port. */
export interface PipeEndpoint {
  readonly ip: string;
  readonly port: number;
}

/**
 * Pipes cross the internet between regions: SRTP keeps the media private and authenticated (and makes
 * a spoofed packet fail decryption instead of reaching a producer), RTX repairs losses on long paths.
 * Both ends must enable both, or the remote's RTX/SRTP packets are dropped.
 */
export const PIPE_TRANSPORT_FEATURES = { enableSrtp: true, enableRtx: true } as const;

export function pipeEndpoint(transport: MsPipeTransport): PipeEndpoint {
  const ip = transport.tuple.localAddress ?? transport.tuple.localIp;
  if (!ip) throw new Error(`pipe transport "${transport.id}" reports no local address`);
  return { ip, port: transport.tuple.localPort };
}

export function assertPortRange(range: PortRange): void {
  const valid = (port: number) => Number.isInteger(port) && port >= 1 && port <= 65_535;
  if (!valid(range.min) || !valid(range.max) || range.min > range.max) {
    throw new Error(
      `pipe port range ${range.min}-${range.max} is not a range of UDP ports; give 1 <= min <= max <= 65535`,
    );
  }
}
