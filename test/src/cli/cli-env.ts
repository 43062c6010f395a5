import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

/** The built CLI (`pagevault`). */
export const CLI = resolve(__dirname, '../../../apps/cli/dist/main.js');

/** Runs the CLI on the repository directory `store` (unless args say --s3), `env` added to ours: exit code, stdout, stderr. */
export function cliOn(store: string, env: Record<string, string> = {}) {
  const pv = (...args: string[]): { code: number; out: string; err: string } => {
    const r = spawnSync(process.execPath, [CLI, '--store', store, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  };
  /** Runs with --json and parses stdout; a non-zero exit throws with its stderr. */
  const pvJson = <T>(...args: string[]): T => {
    const r = pv('--json', ...args);
    if (r.code !== 0) throw new Error(`pagevault ${args.join(' ')} exited ${r.code}: ${r.err}`);
    return JSON.parse(r.out) as T;
  };
  return { pv, pvJson };
}
