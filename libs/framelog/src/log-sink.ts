/** Where adapters send their diagnostics: a callback, so libraries need no logging package. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface LogEntry {
  level: LogLevel;
  /** The component, e.g. "kafkajs.Consumer" or "framelog.in-process". */
  namespace: string;
  message: string;
  extra?: Record<string, unknown>;
}

export type LogSink = (entry: LogEntry) => void;

const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** The default sink: entries at `minLevel` or worse, one JSON line each on stderr. */
export function stderrJsonSink(minLevel: LogLevel = 'warn'): LogSink {
  return (entry) => {
    if (rank[entry.level] > rank[minLevel]) return;
    const line = {
      time: new Date().toISOString(),
      ...entry.extra,
      level: entry.level,
      ns: entry.namespace,
      msg: entry.message,
    };
    process.stderr.write(JSON.stringify(line) + '\n');
  };
}
