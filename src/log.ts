/** pino logger: JSON on stderr, pretty when stderr is a TTY (and pino-pretty is installed). */
import pino from 'pino';
import type { Logger } from 'pino';

export function createLogger(level = 'info'): Logger {
  if (process.stderr.isTTY) {
    try {
      return pino({ level, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } } });
    } catch {
      /* pino-pretty is a dev dependency: fall back to JSON */
    }
  }
  return pino({ level }, pino.destination({ fd: 2, sync: false }));
}

export type { Logger };
