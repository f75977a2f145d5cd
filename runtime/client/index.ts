/**
 * The client SDK, browser-safe: nothing here imports `node:` modules. Node apps import
 * `runtime/client/node` instead, which adds the Node platform (DNS servers, source address).
 */
export { Client, type ClientOptions } from './Client';
export {
  ApiClient,
  PING_PATH,
  type ApiClientEvents,
  type ApiClientOptions,
  type RegionUrl,
  type ServedEvent,
  type SwitchedEvent,
} from './ApiClient';
export { backoffCeilingMs, backoffDelayMs } from './backoff';
export {
  ClientConfigError,
  clientConfigSchema,
  parseClientConfig,
  type ClientConfig,
  type ClientConfigInput,
} from './config';
export {
  ApiError,
  ApiUnavailableError,
  SessionClosedError,
  SignalingLostError,
  SignalingOpenError,
  SignalingRequestError,
  type Attempt,
} from './errors';
export type {
  RemotePeer,
  RemotePausedEvent,
  RemoteTrackEvent,
  TrackEndedEvent,
  TrackEndReason,
  MediaKind,
} from './MediaConnection';
export { browserPlatform, type Platform, type HttpTransport, type SocketFactory } from './platform';
export { RttElection, type RegionRtt, type RttElectionOptions } from './RttElection';
export type { RejoinReason } from './Connection';
export { FailureDetector, type DetectionSignal, type SuspectedEvent } from './FailureDetector';
export type { TokenSource } from './connectOnce';
export {
  Session,
  type JoinOptions,
  type JoinedEvent,
  type ReconnectedEvent,
  type ReconnectingEvent,
  type SessionEvents,
  type SessionState,
  type SuspectedServerEvent,
} from './Session';
