import type { Store } from '../../runtime/store';

/** Records the name of every SDK command `store` sends (`GetItemCommand`, ...), in order. */
export function logStoreCommands(store: Store): string[] {
  const commands: string[] = [];
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      commands.push(context.commandName ?? 'unknown');
      return next(args);
    },
    { step: 'initialize', name: 'logCommands' },
  );
  return commands;
}
