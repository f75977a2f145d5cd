/**
 * Every suite's side of the machine-wide suite lock (test/support/exclusiveSuite.ts), registered before
 * the suite's own hooks (jest's setupFilesAfterEnv). The suite's top level has run by the time the first
 * hook does, so a call to `exclusiveSuite()` there has already chosen the side.
 */
import { acquireSuiteLock, releaseSuiteLock, SUITE_LOCK_WAIT_MS } from './exclusiveSuite';

beforeAll(acquireSuiteLock, SUITE_LOCK_WAIT_MS + 10_000);
afterAll(releaseSuiteLock);
