export * from './engineWorker';
export * from './loadEngine';
export * from './types';
