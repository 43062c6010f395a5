import { type DynamicModule, Module } from '@nestjs/common';
import { Registry } from 'prom-client';
import { Repository } from '@pagevault/repo';
import { HealthController, READINESS } from '@pagevault/service-kit';
import { LOCAL_HOST, RestoreJobsService } from './restore-jobs.service';
import { SnapshotsController } from './snapshots.controller';

@Module({})
export class RestorerModule {
  static forRoot(repo: Repository, registry: Registry, ready: () => Promise<string | undefined>, localHost: string): DynamicModule {
    return {
      module: RestorerModule,
      controllers: [HealthController, SnapshotsController],
      providers: [
        { provide: Repository, useValue: repo },
        { provide: Registry, useValue: registry },
        { provide: READINESS, useValue: ready },
        { provide: LOCAL_HOST, useValue: localHost },
        RestoreJobsService,
      ],
    };
  }
}
