/** The CLI's pino logger: JSON lines on stderr, quiet unless LOG_LEVEL asks for more. */
import pino, { type Logger } from 'pino';

export function cliLogger(level: string | undefined, fallback = 'warn'): Logger {
  return pino({ name: 'kvfold', level: level ?? fallback }, pino.destination(2));
}
