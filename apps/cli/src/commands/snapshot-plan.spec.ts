import { describe, expect, it } from 'vitest';
import { cgroup2Mount } from '@pagevault/capture';
import { ErrorCodes } from '@pagevault/errors';
import { snapshotPlan } from './snapshot';

const refused = (args: string[], o: Parameters<typeof snapshotPlan>[1], why: string) =>
  expect(() => snapshotPlan(args, o)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining(why) }));

describe('snapshotPlan', () => {
  it('takes each pid, live or incremental, as asked', () => {
    expect(snapshotPlan(['12', '13'], {})).toEqual({ kind: 'each', pids: [12, 13], live: false });
    expect(snapshotPlan(['12'], { live: true, parent: 'latest' })).toEqual({ kind: 'each', pids: [12], live: true, parent: 'latest' });
    expect(snapshotPlan(['12'], { preCopy: true })).toEqual({ kind: 'pre-copy', pids: [12], budget: 2048 });
    expect(snapshotPlan(['12'], { preCopy: '100' })).toEqual({ kind: 'pre-copy', pids: [12], budget: 100 });
    expect(snapshotPlan(['12', '13'], { group: true })).toEqual({ kind: 'group', targets: { pids: [12, 13] } });
    expect(snapshotPlan([], { tree: '7' })).toEqual({ kind: 'group', targets: { tree: 7 } });
  });

  it('takes a cgroup absolute or relative to the cgroup v2 mount (as the agent does), never outside it', () => {
    const mount = cgroup2Mount();
    if (!mount) return refused([], { cgroup: 'app' }, 'this host has no cgroup v2 hierarchy');
    expect(snapshotPlan([], { cgroup: `${mount}/app` })).toEqual({ kind: 'group', targets: { cgroup: `${mount}/app` } });
    expect(snapshotPlan([], { cgroup: 'app' })).toEqual({ kind: 'group', targets: { cgroup: `${mount}/app` } });
    refused([], { cgroup: '../../etc' }, 'not under the cgroup v2 mount');
    refused([], { cgroup: '/etc' }, 'not under the cgroup v2 mount');
  });

  it('refuses what a mode would silently ignore or misread', () => {
    refused(['12'], { group: true, parent: 'latest' }, '--parent is not supported for a group');
    // One snapshot as the parent of several processes: refused before any is taken.
    refused(['12', '13'], { parent: 'abc123' }, "--parent abc123 is one process's snapshot, and 2 pids are named: --parent latest takes each one's latest");
    expect(snapshotPlan(['12', '13'], { parent: 'latest:tag=nightly' })).toEqual({ kind: 'each', pids: [12, 13], live: false, parent: 'latest:tag=nightly' });
    refused([], { tree: '7', parent: 'latest' }, '--parent is not supported for a group');
    refused(['12'], { preCopy: true, parent: 'latest' }, 'takes no --parent');
    refused(['12'], { preCopy: 'zzzz' }, 'budget must be a number');
    refused(['12'], { preCopy: '0' }, 'budget must be a number');
    refused(['12'], { live: true, group: true }, '--group and --live cannot be combined');
    refused(['12'], { live: true, preCopy: true }, 'cannot be combined');
    refused([], { tree: '7', cgroup: 'x' }, 'cannot be combined');
    refused(['12'], { tree: '7' }, 'drop the pids 12');
    refused(['12'], { cgroup: 'x' }, 'drop the pids 12');
    refused([], { tree: 'abc' }, '--tree needs a pid, got: abc');
    refused([], { cgroup: '' }, '--cgroup needs a cgroup v2 path');
    refused(['12', '12'], {}, 'listed twice');
    refused(['1.5'], {}, 'not a pid: 1.5');
    refused(['0x10'], {}, 'not a pid: 0x10');
    refused([], {}, 'name pids');
  });
});
