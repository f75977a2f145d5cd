/**
 * Every suite's environment: jest's Node environment, inside the machine-wide suite lock
 * (test/support/suiteLock.ts). `setup()` runs before the suite's file is compiled and loaded, and
 * `teardown()` after its last hook, so a timing suite shares the machine with no other suite's work,
 * its compilation and its cleanup included.
 *
 * A timing suite says so in its file's first docblock:
 *
 *     /**
 *      * What the suite measures...
 *      *
 *      * @exclusive-suite
 *      *\/
 */
import { TestEnvironment } from 'jest-environment-node';
import { acquireSuiteLock, releaseSuiteLock } from './suiteLock';

export const EXCLUSIVE_PRAGMA = 'exclusive-suite';

export default class SuiteLockEnvironment extends TestEnvironment {
  private readonly exclusive: boolean;
  private locked = false;

  constructor(...[config, context]: ConstructorParameters<typeof TestEnvironment>) {
    super(config, context);
    this.exclusive = EXCLUSIVE_PRAGMA in context.docblockPragmas;
  }

  override async setup(): Promise<void> {
    await acquireSuiteLock(this.exclusive);
    this.locked = true;
    await super.setup();
  }

  override async teardown(): Promise<void> {
    try {
      await super.teardown();
    } finally {
      if (this.locked) releaseSuiteLock(this.exclusive);
    }
  }
}
