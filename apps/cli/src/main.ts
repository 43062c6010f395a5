#!/usr/bin/env node
import { writeSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { installThawOnSignals, leftStopped } from '@pagevault/capture';
import { isPvError } from '@pagevault/errors';
import { settleHelperThreads } from '@pagevault/hashing';
import { registerPruneCommands } from './commands/prune';
import { registerReadCommands } from './commands/read';
import { registerRestoreCommands } from './commands/restore';
import { registerSnapshotCommand } from './commands/snapshot';
import type { GlobalOptions } from './context';
import { runDemo } from './demo/demo';
import { Exit, exitCodeFor } from './exit-codes';
import { committedThisRun, shippedUncommitted } from './pipeline';

// The AWS SDK prints an 8-line notice on every run under Node 20 (its releases after January 2027 need
// Node 22; the pinned one runs on 20, README says so). A command's stderr is for its own errors.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

// A snapshot interrupted (Ctrl-C, a closed terminal, a supervisor's SIGTERM) thaws its frozen targets
// before the CLI dies of the signal, saying so (a partial output is removed on the way out; a snapshot
// not committed is not one).
installThawOnSignals(['SIGINT', 'SIGTERM', 'SIGHUP'], (sig) => {
  const shipped = [...shippedUncommitted];
  const inKafka = shipped.length
    ? `; snapshot ${shipped.join(', ')} is all in Kafka already: a compactor will still commit it (\`pagevault show <id>\` once it has)`
    : '';
  // A live restore's target is left stopped rather than running half restored.
  const held = [...leftStopped];
  const stopped = held.length ? `process ${held.join(', ')} is left stopped, part restored (restore it again, or kill it); any other ` : 'any ';
  const kept = committedThisRun.length ? `; committed before it, and kept: ${committedThisRun.join(', ')}` : '';
  writeSync(2, `pagevault: stopped by ${sig}: ${stopped}process it froze is thawed, and nothing unfinished is left looking complete${kept}${inKafka}\n`);
});

const program = new Command('pagevault')
  .description('checkpoint the memory of live Linux processes, deduplicated and content-addressed')
  .option('--store <dir>', 'repository directory for the embedded mode (default $PV_HOME or ~/.pagevault)')
  .option('--s3', 'use the S3 bucket from PV_S3_* instead of a directory')
  .option('--kafka', 'send frames to the Kafka topic from PV_KAFKA_* (the fleet compactors commit them)')
  .option('--tenant <name>', 'tenant (the dedup scope)', 'default')
  .option('--host <name>', 'host name recorded in snapshots (default: this host)')
  .option('--json', 'machine-readable output')
  .addHelpText('after', `\nSnapshot references: an id, a unique id prefix, latest, or latest narrowed as latest:host=<name>,pid=<n>,tag=<tag>.\nExit codes: 0 ok, 1 failure, 2 usage, 3 unknown snapshot, 4 missing or corrupt data (an object, or a mapped file a restore reads pages from), 5 permission, 6 target process, 7 service unavailable, 8 tenant locked (prune while snapshots are ingested), 9 no space left (store or restore output)`)
  .exitOverride();

// A reader that stops early (`pagevault ls | head`) closes the pipe: that ends the output, not in a crash.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(Exit.ok);
  throw e;
});

const globals = () => program.opts<GlobalOptions>();
registerSnapshotCommand(program, globals);
registerReadCommands(program, globals);
registerRestoreCommands(program, globals);
registerPruneCommands(program, globals);
program.command('demo').description('snapshot a sample process twice, restore and verify both, print the figures').action(() => runDemo(globals()));

// A helper thread (page hasher, frame sealer) still loading its library when the process exits would
// crash it: wait for it. Output to a pipe is written asynchronously: process.exit() with some of it still
// queued cut `show --json | jq` off at 64 KiB, exit 0. Wait until stdout and stderr have written it all.
const exit = (code: number) =>
  void settleHelperThreads()
    .then(() => Promise.all([drained(process.stdout), drained(process.stderr)]))
    .finally(() => process.exit(code));

/** Resolves once everything written to `s` so far has gone to the kernel (writes complete in order). */
function drained(s: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => (s.writableLength === 0 || s.destroyed ? resolve() : s.write('', () => resolve())));
}

program.parseAsync(process.argv).then(
  () => exit(Exit.ok),
  (e: unknown) => {
    if (e instanceof CommanderError) return exit(e.exitCode === 0 ? Exit.ok : Exit.usage);
    if (isPvError(e)) {
      process.stderr.write(`pagevault: ${e.code}: ${e.message}\n`);
      return exit(exitCodeFor(e.code));
    }
    process.stderr.write(`pagevault: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return exit(Exit.failure);
  },
);
