'use strict';
// Child processes for the bench: commands timed with their peak RSS (GNU time), and targets that
// announce themselves with one JSON line on stdout.
const { spawn } = require('node:child_process');
const { once } = require('node:events');
const { readFileSync, rmSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const { createInterface } = require('node:readline');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a command to completion under /usr/bin/time: wall ms (measured here), peak RSS of the command and
 * its descendants (KiB), stdout. Rejects with stderr when it fails.
 */
async function run(cmd, args, { env, cwd, timeoutMs = 30 * 60_000, tmp = '/tmp' } = {}) {
  const rssFile = `${tmp}/.time-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const child = spawn('/usr/bin/time', ['-f', '%M', '-o', rssFile, cmd, ...args], {
    env: env ?? process.env, cwd, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = [];
  const err = [];
  child.stdout.on('data', (b) => out.push(b));
  child.stderr.on('data', (b) => err.push(b));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const t0 = performance.now();
  const [code, signal] = await once(child, 'exit');
  const ms = performance.now() - t0;
  clearTimeout(timer);
  let maxRssKiB = 0;
  try {
    maxRssKiB = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) || 0;
  } catch {
    // time wrote nothing (killed): no figure
  }
  rmSync(rssFile, { force: true });
  const stdout = Buffer.concat(out).toString();
  const stderr = Buffer.concat(err).toString();
  if (code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
  }
  return { ms, maxRssKiB, stdout, stderr };
}

/** Output of a quick command, or '' when it is missing or fails (tool versions). */
function quiet(cmd, args) {
  try {
    return require('node:child_process').execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 }).toString().trim();
  } catch {
    return '';
  }
}

/** Starts a long-running target whose first stdout line is JSON; resolves once that line arrives. */
async function startTarget(cmd, args, { label, timeoutMs = 10 * 60_000, env } = {}) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], env: env ?? process.env });
  const lines = createInterface({ input: child.stdout });
  const queue = [];
  const waiting = [];
  lines.on('line', (l) => (waiting.length ? waiting.shift()(l) : queue.push(l)));
  const nextLine = () => new Promise((resolve, reject) => {
    if (queue.length) return resolve(queue.shift());
    const timer = setTimeout(() => reject(new Error(`${label}: no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    waiting.push((l) => (clearTimeout(timer), resolve(l)));
  });
  const exited = once(child, 'exit').then(([code, sig]) => {
    throw new Error(`${label} exited (${sig ?? code}) before it was ready`);
  });
  exited.catch(() => undefined);
  const info = JSON.parse(await Promise.race([nextLine(), exited]));
  return {
    child, info, pid: info.pid ?? child.pid,
    /** Sends a line, resolves with the next line of output. */
    ask: async (line) => (child.stdin.write(`${line}\n`), nextLine()),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await once(child, 'exit');
      clearTimeout(t);
    },
  };
}

/**
 * Starts a command that must not outlive the bench (a server with no stdin of ours to read): a shell
 * holds it and kills it when our end of its stdin closes, however the bench ends. Resolves with the
 * command's own pid (not the shell's).
 */
async function spawnTethered(cmd, args, { stdio = 'ignore' } = {}) {
  const child = spawn('bash', ['-c', '"$@" <&- >/dev/null & echo $!; read -r _; kill -9 $! 2>/dev/null; wait', 'tether', cmd, ...args], {
    stdio: ['pipe', 'pipe', stdio === 'inherit' ? 'inherit' : 'ignore'],
  });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', () => reject(new Error(`${cmd} did not start`)));
  });
  const pid = Number(line);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    pid,
    running: () => !exited() && require('node:fs').existsSync(`/proc/${pid}`),
    stop: async () => {
      if (exited()) return;
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
      child.stdin.end();
      await once(child, 'exit');
    },
  };
}

module.exports = { sleep, run, quiet, startTarget, spawnTethered };
