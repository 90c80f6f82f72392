import type pg from 'pg';

/**
 * Bounds on every PostgreSQL connection of the server (docs/scale-out.md, "The PostgreSQL store"):
 * a statement waiting on a lock, a transaction left open, or a connection whose peer vanished
 * (half-open TCP) ends in an error the server answers 503 storage_failed, never a hang that would
 * stall the log writer's batches or hold row locks for minutes.
 */
export interface PostgresTimeouts {
  /** The server cancels a statement running (or waiting on a lock) longer: 57014. */
  statementMs: number;
  /** The server ends a session idle inside a transaction longer: 25P03. */
  idleInTransactionMs: number;
  /** The client gives up on an answer after this (the server may never answer: the network broke); the connection is dropped. */
  queryMs: number;
}

export const DEFAULT_POSTGRES_TIMEOUTS: PostgresTimeouts = { statementMs: 30_000, idleInTransactionMs: 60_000, queryMs: 35_000 };

/** TCP keepalive probes start after this idle time: a dead peer is found by the kernel, not by the next statement. */
const KEEPALIVE_DELAY_MS = 10_000;

/** The pg pool settings for these bounds. */
export function poolTimeouts(timeouts: PostgresTimeouts = DEFAULT_POSTGRES_TIMEOUTS): Pick<pg.PoolConfig,
  'keepAlive' | 'keepAliveInitialDelayMillis' | 'statement_timeout' | 'idle_in_transaction_session_timeout' | 'query_timeout'> {
  return {
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    statement_timeout: timeouts.statementMs,
    idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
    query_timeout: timeouts.queryMs,
  };
}
