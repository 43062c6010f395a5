import { type DynamicModule, Module } from '@nestjs/common';
import { Registry } from 'prom-client';
import { CompactionService } from '@pagevault/compaction';
import { HealthController, READINESS } from '@pagevault/service-kit';
import { COMPACTION, CompactorRunner, STARTUP, type Startup } from './compactor.service';

@Module({})
export class CompactorModule {
  static forRoot(compaction: CompactionService, registry: Registry, ready: () => Promise<string | undefined>, startup: Startup): DynamicModule {
    return {
      module: CompactorModule,
      controllers: [HealthController],
      providers: [
        { provide: COMPACTION, useValue: compaction },
        { provide: Registry, useValue: registry },
        { provide: READINESS, useValue: ready },
        { provide: STARTUP, useValue: startup },
        CompactorRunner,
      ],
    };
  }
}
