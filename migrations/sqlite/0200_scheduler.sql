-- The scheduler: run history, application locks (pause), sequence positions
-- and the writer lease. Times are unix nanoseconds. See the MySQL file for
-- column comments.
CREATE TABLE IF NOT EXISTS scheduler_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app VARCHAR(128) NOT NULL,
  args TEXT NOT NULL,
  writer TINYINT NOT NULL,
  trigger_kind VARCHAR(16) NOT NULL,
  trigger_name VARCHAR(128) NOT NULL,
  server VARCHAR(128) NOT NULL,
  started_at BIGINT NOT NULL,
  ended_at BIGINT NOT NULL,
  status VARCHAR(16) NOT NULL,
  error TEXT NOT NULL,
  updates INT NOT NULL,
  planned INT NOT NULL,
  first_seq BIGINT NOT NULL,
  last_seq BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS scheduler_runs_app ON scheduler_runs (app, id);
CREATE INDEX IF NOT EXISTS scheduler_runs_status ON scheduler_runs (status, id);

CREATE TABLE IF NOT EXISTS scheduler_app_locks (
  app VARCHAR(128) NOT NULL PRIMARY KEY,
  paused_by VARCHAR(128) NOT NULL,
  reason VARCHAR(512) NOT NULL,
  paused_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS scheduler_sequences (
  name VARCHAR(128) NOT NULL PRIMARY KEY,
  next_step INT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS scheduler_lease (
  name VARCHAR(32) NOT NULL PRIMARY KEY,
  holder VARCHAR(128) NOT NULL,
  acquired_at BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  epoch BIGINT NOT NULL
);
