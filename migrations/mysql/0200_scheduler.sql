-- The scheduler: run history, application locks (pause), sequence positions
-- and the writer lease. Times are unix nanoseconds (BIGINT): runs and lease
-- heartbeats need sub-second precision.

-- One row per application run (and per skipped run of a paused application).
CREATE TABLE IF NOT EXISTS scheduler_runs (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  app VARCHAR(128) NOT NULL,
  args TEXT NOT NULL,                      -- JSON array of arguments
  writer TINYINT NOT NULL,                 -- 1: run write-enabled (its plan is applied)
  trigger_kind VARCHAR(16) NOT NULL,       -- cron, sequence, manual
  trigger_name VARCHAR(128) NOT NULL,      -- cron entry, sequence name or user
  server VARCHAR(128) NOT NULL,            -- the server id that ran it
  started_at BIGINT NOT NULL,
  ended_at BIGINT NOT NULL,                -- 0 while running
  status VARCHAR(16) NOT NULL,             -- queued, running, ok, failed, timeout, cancelled, skipped, abandoned
  error TEXT NOT NULL,
  updates INT NOT NULL,                    -- inventory updates applied
  planned INT NOT NULL,                    -- updates in the plan (a dry run plans without applying)
  first_seq BIGINT NOT NULL,               -- change-log range written, 0 if none
  last_seq BIGINT NOT NULL,
  KEY scheduler_runs_app (app, id),        -- used by: runs of one app, last run per app
  KEY scheduler_runs_status (status, id)   -- used by: runs by status, abandoning running rows
) ENGINE=InnoDB;

-- Paused applications: present means paused.
CREATE TABLE IF NOT EXISTS scheduler_app_locks (
  app VARCHAR(128) NOT NULL PRIMARY KEY,
  paused_by VARCHAR(128) NOT NULL,
  reason VARCHAR(512) NOT NULL,
  paused_at BIGINT NOT NULL
) ENGINE=InnoDB;

-- Where each sequence resumes (the index of its next step).
CREATE TABLE IF NOT EXISTS scheduler_sequences (
  name VARCHAR(128) NOT NULL PRIMARY KEY,
  next_step INT NOT NULL,
  updated_at BIGINT NOT NULL
) ENGINE=InnoDB;

-- The writer lease: one row per lease name ("writer"). The holder may write
-- the inventory until expires_at; it renews at every heartbeat.
CREATE TABLE IF NOT EXISTS scheduler_lease (
  name VARCHAR(32) NOT NULL PRIMARY KEY,
  holder VARCHAR(128) NOT NULL,
  acquired_at BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  epoch BIGINT NOT NULL                    -- incremented at every change of holder
) ENGINE=InnoDB;
