import { type DynamicModule, Module } from '@nestjs/common';
import { Registry } from 'prom-client';
import type { FrameLog } from '@pagevault/framelog';
import { HealthController, READINESS, readinessOf } from '@pagevault/service-kit';
import type { AgentMetrics } from './agent-metrics';
import { SnapshotsController } from './snapshots.controller';
import { AGENT_CONFIG, FRAME_LOG, METRICS, SnapshotsService, type AgentConfig } from './snapshots.service';

@Module({})
export class AgentModule {
  static forRoot(log: FrameLog, cfg: AgentConfig, registry: Registry, metrics: AgentMetrics): DynamicModule {
    return {
      module: AgentModule,
      controllers: [HealthController, SnapshotsController],
      providers: [
        { provide: FRAME_LOG, useValue: log },
        { provide: AGENT_CONFIG, useValue: cfg },
        { provide: METRICS, useValue: metrics },
        { provide: Registry, useValue: registry },
        // Ready when the Kafka cluster answers: a snapshot taken meanwhile would wait in the spool and fail.
        { provide: READINESS, useValue: readinessOf({ kafka: () => log.endOffsets() }) },
        SnapshotsService,
      ],
    };
  }
}
