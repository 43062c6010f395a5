import { isPvError, ErrorCodes } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { kafkaCompression, logLevel, retentionSetting, spoolSetting } from './index';

describe('settings from the environment', () => {
  it('takes a log level by our names and the services\' pino names, else the fallback', () => {
    expect(logLevel(undefined, 'error')).toBe('error');
    expect(logLevel('', 'warn')).toBe('warn');
    expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].map((v) => logLevel(v, 'info'))).toEqual(
      ['debug', 'debug', 'info', 'warn', 'error', 'error', 'error'],
    );
  });

  it('refuses an unknown value with a config error naming the variable', () => {
    for (const bad of [() => logLevel('loud', 'warn'), () => kafkaCompression('gzip'), () => retentionSetting('1.5'), () => retentionSetting('0')]) {
      let caught: unknown;
      try {
        bad();
      } catch (e) {
        caught = e;
      }
      expect(isPvError(caught, ErrorCodes.CONFIG_INVALID)).toBe(true);
      expect(String((caught as Error).message)).toMatch(/^PV_(LOG_LEVEL|KAFKA_COMPRESSION|KAFKA_RETENTION_HOURS) must be/);
    }
  });

  it('gives the frame topic 72 hours of retention unless told otherwise', () => {
    expect(retentionSetting(undefined)).toEqual({ retentionMs: 72 * 3_600_000 });
    expect(retentionSetting('')).toEqual({ retentionMs: 72 * 3_600_000 });
    expect(retentionSetting('6')).toEqual({ retentionMs: 6 * 3_600_000 });
    expect(retentionSetting(24)).toEqual({ retentionMs: 24 * 3_600_000 });
  });

  it('turns the spool settings into options, or none for "off"', () => {
    expect(spoolSetting('/srv/spool', 16)).toEqual({ spool: { dir: '/srv/spool', memoryBytes: 16 * 1_048_576 } });
    expect(spoolSetting('off')).toEqual({});
    expect(spoolSetting('/srv/spool', '0')).toEqual({ spool: { dir: '/srv/spool', memoryBytes: 0 } });
    expect(spoolSetting('/srv/spool', '')).toEqual({ spool: { dir: '/srv/spool', memoryBytes: 64 * 1_048_576 } });
    for (const bad of ['lots', '-1', '1.5']) {
      expect(() => spoolSetting('/srv/spool', bad)).toThrow(/PV_SPOOL_MEMORY_MIB must be a whole number/);
    }
  });
});
