import { isPvError, ErrorCodes } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { kafkaCompression, logLevel, spoolSetting } from './index';

describe('settings from the environment', () => {
  it('takes a log level by our names and the services\' pino names, else the fallback', () => {
    expect(logLevel(undefined, 'error')).toBe('error');
    expect(logLevel('', 'warn')).toBe('warn');
    expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].map((v) => logLevel(v, 'info'))).toEqual(
      ['debug', 'debug', 'info', 'warn', 'error', 'error', 'error'],
    );
  });

  it('refuses an unknown value with a config error naming the variable', () => {
    for (const bad of [() => logLevel('loud', 'warn'), () => kafkaCompression('gzip')]) {
      let caught: unknown;
      try {
        bad();
      } catch (e) {
        caught = e;
      }
      expect(isPvError(caught, ErrorCodes.CONFIG_INVALID)).toBe(true);
      expect(String((caught as Error).message)).toMatch(/^PV_(LOG_LEVEL|KAFKA_COMPRESSION) must be/);
    }
  });

  it('turns the spool settings into options, or none for "off"', () => {
    expect(spoolSetting('/srv/spool', 16)).toEqual({ spool: { dir: '/srv/spool', memoryBytes: 16 * 1_048_576 } });
    expect(spoolSetting('off')).toEqual({});
  });
});
