export * from './errors';
export * from './LegRepository';
export * from './RegionRepository';
export * from './RoomRepository';
export * from './schema';
export * from './ServerRepository';
export * from './Store';
export { createDynamoClient, type TableOptions } from './Table';
export * from './types';
