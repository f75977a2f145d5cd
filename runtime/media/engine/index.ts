export * from './engineWorker';
export * from './loadEngine';
export * from './pipeTransport';
export * from './types';
