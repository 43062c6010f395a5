import { Body, Controller, Get, Inject, Param, Post } from '@nestjs/common';
import { SnapshotsService, type SnapshotJob } from './snapshots.service';

/** POST /snapshots starts a capture; GET /snapshots/:id reports its progress and result. */
@Controller('snapshots')
export class SnapshotsController {
  constructor(@Inject(SnapshotsService) private readonly snapshots: SnapshotsService) {}

  @Post()
  start(@Body() body: { pid?: number; pids?: number[]; mode?: string; parent?: string }): SnapshotJob[] {
    const pids = body.pids ?? (body.pid !== undefined ? [body.pid] : []);
    return pids.map((pid) => this.snapshots.start({ pid, ...(body.mode ? { mode: body.mode } : {}), ...(body.parent ? { parent: body.parent } : {}) }));
  }

  @Get(':id')
  get(@Param('id') id: string): SnapshotJob {
    return this.snapshots.get(id);
  }
}
