/**
 * Compile-time proof that both mediasoup versions satisfy the subset in types.ts, so the loader's casts
 * are sound and an upgrade that changes a method we call fails `npm run build` instead of a call.
 * Type-only: nothing imports this module at run time.
 */
import type { types as current } from 'mediasoup';
import type { types as legacy } from 'mediasoup-legacy';
import type {
  MsConsumer,
  MsDirectProducer,
  MsDirectTransport,
  MsPipeConsumer,
  MsPipeTransport,
  MsProducer,
  MsRouter,
  MsWebRtcTransport,
  MsWorker,
} from './types';

type Fits<Actual, Subset> = Actual extends Subset ? true : false;

export const MEDIASOUP_TYPES_FIT: [
  Fits<current.Worker, MsWorker>,
  Fits<current.Router, MsRouter>,
  Fits<current.WebRtcTransport, MsWebRtcTransport>,
  Fits<current.Producer, MsProducer>,
  Fits<current.Consumer, MsConsumer>,
  Fits<current.PipeTransport, MsPipeTransport>,
  Fits<current.Consumer, MsPipeConsumer>,
  Fits<current.DirectTransport, MsDirectTransport>,
  Fits<current.Producer, MsDirectProducer>,
  Fits<legacy.Worker, MsWorker>,
  Fits<legacy.Router, MsRouter>,
  Fits<legacy.WebRtcTransport, MsWebRtcTransport>,
  Fits<legacy.Producer, MsProducer>,
  Fits<legacy.Consumer, MsConsumer>,
  Fits<legacy.PipeTransport, MsPipeTransport>,
  Fits<legacy.Consumer, MsPipeConsumer>,
  Fits<legacy.DirectTransport, MsDirectTransport>,
  Fits<legacy.Producer, MsDirectProducer>,
] = [
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
  true,
];
