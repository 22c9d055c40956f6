-- The file-operation queue (package fileop). Times are unix seconds except
-- where a column says _ns. See docs/fileop.md for the state machine.

-- One row per requested operation on one file at one site. live is 1 while
-- the row can still act (new, inbatch, retry, held) and NULL once done or
-- cancelled, so UNIQUE (op, file_id, site_id, live) allows one live
-- subscription per (operation, file, site) and any number of finished ones
-- (NULLs are distinct in unique indexes on both dialects).
CREATE TABLE IF NOT EXISTS fileop_subscriptions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  op VARCHAR(8) NOT NULL,
  file_id BIGINT NOT NULL,
  block_id INT NOT NULL,
  site_id INT NOT NULL,
  lfn VARCHAR(512) NOT NULL,
  size BIGINT NOT NULL,
  adler32 CHAR(8) NOT NULL DEFAULT '',
  state VARCHAR(12) NOT NULL,
  hold_reason VARCHAR(24) NOT NULL DEFAULT '',
  live TINYINT NULL,
  priority INT NOT NULL DEFAULT 0,
  created BIGINT NOT NULL,
  updated BIGINT NOT NULL,
  tries INT NOT NULL DEFAULT 0,
  next_try_ns BIGINT NOT NULL DEFAULT 0,
  batch_id BIGINT NOT NULL DEFAULT 0,
  source_site_id INT NOT NULL DEFAULT 0,
  message VARCHAR(1024) NOT NULL DEFAULT '',
  UNIQUE (op, file_id, site_id, live)
);
-- used by the dispatcher: pending rows in priority order
CREATE INDEX IF NOT EXISTS fileop_subs_state ON fileop_subscriptions (state, next_try_ns);
-- used by completion and restart: the rows of one batch
CREATE INDEX IF NOT EXISTS fileop_subs_batch ON fileop_subscriptions (batch_id);

-- A group of subscriptions handed to one backend together (same op, same
-- source and destination). job_id is the backend's handle (FTS3 job id).
CREATE TABLE IF NOT EXISTS fileop_batches (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  op VARCHAR(8) NOT NULL,
  backend VARCHAR(16) NOT NULL,
  source_site_id INT NOT NULL DEFAULT 0,
  site_id INT NOT NULL,
  job_id VARCHAR(64) NOT NULL DEFAULT '',
  state VARCHAR(12) NOT NULL,
  created BIGINT NOT NULL,
  updated BIGINT NOT NULL
);
-- used by restart: batches still open
CREATE INDEX IF NOT EXISTS fileop_batches_state ON fileop_batches (state);

-- Per-source failure memory of a transfer subscription (source selection:
-- untried first, then fewest failures; all irrecoverable -> held).
CREATE TABLE IF NOT EXISTS fileop_source_failures (
  subscription_id BIGINT NOT NULL,
  source_site_id INT NOT NULL,
  failures INT NOT NULL,
  recoverable TINYINT NOT NULL,
  code VARCHAR(32) NOT NULL DEFAULT '',
  PRIMARY KEY (subscription_id, source_site_id)
);

-- Every attempt, successful or not.
CREATE TABLE IF NOT EXISTS fileop_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  subscription_id BIGINT NOT NULL,
  op VARCHAR(8) NOT NULL,
  file_id BIGINT NOT NULL,
  lfn VARCHAR(512) NOT NULL,
  source_site_id INT NOT NULL DEFAULT 0,
  site_id INT NOT NULL,
  source VARCHAR(1024) NOT NULL DEFAULT '',
  destination VARCHAR(1024) NOT NULL DEFAULT '',
  backend VARCHAR(16) NOT NULL,
  outcome VARCHAR(12) NOT NULL,
  mode VARCHAR(8) NOT NULL DEFAULT '',
  bytes BIGINT NOT NULL DEFAULT 0,
  duration_ns BIGINT NOT NULL DEFAULT 0,
  checksum VARCHAR(12) NOT NULL DEFAULT '',
  exit_code INT NOT NULL DEFAULT 0,
  code VARCHAR(32) NOT NULL DEFAULT '',
  message VARCHAR(1024) NOT NULL DEFAULT '',
  finished BIGINT NOT NULL
);
-- used by the history API: one file's attempts
CREATE INDEX IF NOT EXISTS fileop_history_sub ON fileop_history (subscription_id);
CREATE INDEX IF NOT EXISTS fileop_history_finished ON fileop_history (finished);
