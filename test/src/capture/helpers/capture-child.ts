// A stand-in for the agent, run as its own node process: installs the thaw-on-signal handler, starts a
// frozen capture of argv[2] whose sink never drains, says "FROZEN" and waits to be killed.
import { captureSnapshot, installThawOnSignals } from '@pagevault/capture';
import { SnapshotWriter, newSnapshotId } from '@pagevault/format';

installThawOnSignals();
const pid = Number(process.argv[2]);
const writer = new SnapshotWriter({ snapshotId: newSnapshotId(), emit: () => undefined });
let told = false;
void captureSnapshot({
  pid,
  writer,
  tenant: 't',
  host: 'h',
  batchPages: 16,
  drain: () => {
    if (!told) process.stdout.write('FROZEN\n');
    told = true;
    return new Promise<void>(() => undefined);
  },
});
setInterval(() => undefined, 1000);
