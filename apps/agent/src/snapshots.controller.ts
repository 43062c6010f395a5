import { Body, Controller, Get, Inject, Param, Post } from '@nestjs/common';
import { checkTargets } from '@pagevault/capture';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { requestBody, shown } from '@pagevault/service-kit';
import { SnapshotsService, type SnapshotJob } from './snapshots.service';

interface StartBody {
  pid?: number;
  /** Several pids: one job each, or with `group: true` one group job frozen together. */
  pids?: number[];
  group?: boolean;
  /** A process and all its descendants, as one group. */
  tree?: number;
  /** Every process of a cgroup v2 (a path under its mount, or relative to it), as one group. */
  cgroup?: string;
  mode?: string;
  parent?: string;
}

/** POST /snapshots starts captures; GET /snapshots/:id reports a job's progress and result. */
@Controller('snapshots')
export class SnapshotsController {
  constructor(@Inject(SnapshotsService) private readonly snapshots: SnapshotsService) {}

  @Post()
  start(@Body() raw: unknown): SnapshotJob[] {
    const body = requestBody<StartBody>(raw, ['pid', 'pids', 'group', 'tree', 'cgroup', 'mode', 'parent']);
    const given = (['pid', 'pids', 'tree', 'cgroup'] as const).filter((k) => body[k] !== undefined);
    if (given.length !== 1) {
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `give exactly one of pid, pids, tree or cgroup${given.length ? `, not ${given.join(' and ')}` : ''}`);
    }
    // A field of the wrong type is refused, never taken for its absence ("group": "true" is not a group).
    const wrong = (field: string, want: string) => new PvError(ErrorCodes.INVALID_ARGUMENT, `${field} must be ${want}, not ${shown(body[field as keyof StartBody])}`);
    if (body.group !== undefined && typeof body.group !== 'boolean') throw wrong('group', 'true or false');
    if (body.group !== undefined && body.pids === undefined) throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'group goes with pids (tree and cgroup are groups already; one pid is not)');
    if (body.mode !== undefined && (typeof body.mode !== 'string' || body.mode === '')) throw wrong('mode', 'default, live or pre-copy');
    if (body.parent !== undefined && (typeof body.parent !== 'string' || !/^[0-9a-f]{32}$/.test(body.parent))) throw wrong('parent', 'a job id (32 hex digits)');
    const opts = { ...(body.mode !== undefined ? { mode: body.mode } : {}), ...(body.parent !== undefined ? { parent: body.parent } : {}) };
    if (body.tree !== undefined) return [this.snapshots.startGroup({ targets: { tree: body.tree }, ...opts })];
    if (body.cgroup !== undefined) return [this.snapshots.startGroup({ targets: { cgroup: body.cgroup }, ...opts })];
    if (body.pids !== undefined && body.group === true) return [this.snapshots.startGroup({ targets: { pids: body.pids }, ...opts })];
    const pids = body.pids ?? [body.pid!];
    if (!Array.isArray(pids) || pids.length === 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'pids must be a non-empty list');
    // All checked before any starts: a bad pid late in the list must not leave the earlier ones running.
    const bad = pids.find((pid) => !Number.isSafeInteger(pid) || pid <= 0);
    if (bad !== undefined) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `pid must be a positive integer, not ${shown(bad)}`);
    checkTargets(pids, { freezing: body.mode !== 'live', alone: true }); // a pid gone late in the list starts none of them
    return pids.map((pid) => this.snapshots.start({ pid, ...opts }));
  }

  @Get(':id')
  get(@Param('id') id: string): SnapshotJob {
    return this.snapshots.get(id);
  }
}
