-- The stager (SRM request adapter) and projects (SAM-style delivery of a
-- dataset to consumer processes). Times are unix nanoseconds (BIGINT).

-- One row per stager request (get, ls, mkdir, delete, copy). Rows stay after
-- completion for the owner to look up; a get in state 'ready' holds an SRM
-- pin until it is released or expires.
CREATE TABLE IF NOT EXISTS stager_requests (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(16) NOT NULL,
  owner VARCHAR(64) NOT NULL,              -- subscriber that gets the callback ('' = none)
  surl VARCHAR(2048) NOT NULL,
  dest VARCHAR(2048) NOT NULL,             -- copy target
  protocols VARCHAR(255) NOT NULL,         -- comma-separated TURL protocols for a get
  state VARCHAR(16) NOT NULL,              -- queued, polling, ready, done, released, failed, timedout, aborted, expired
  token VARCHAR(128) NOT NULL,             -- SRM request token ('' until submitted)
  dest_token VARCHAR(128) NOT NULL,        -- copy: the put request token
  turl VARCHAR(4096) NOT NULL,
  error VARCHAR(2048) NOT NULL,
  result MEDIUMTEXT NOT NULL,              -- ls: JSON entries
  created BIGINT NOT NULL,
  deadline BIGINT NOT NULL,                -- the request times out after this
  next_poll BIGINT NOT NULL,
  delay BIGINT NOT NULL,                   -- current poll backoff
  polls INT NOT NULL,
  pin_lifetime BIGINT NOT NULL,
  pin_until BIGINT NOT NULL,               -- ready: the stager releases the pin after this
  cleanup TINYINT NOT NULL,                -- 1: token (and dest_token) still to be released/aborted at the SE
  webhook VARCHAR(1024) NOT NULL,
  notified TINYINT NOT NULL,               -- 0: the webhook of the current state is still owed
  updated BIGINT NOT NULL,
  -- used by the poller at start-up (everything not finished and cleaned up)
  KEY stager_requests_state (state, cleanup)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS projects (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  dataset VARCHAR(512) NOT NULL,
  site VARCHAR(128) NOT NULL,
  state VARCHAR(16) NOT NULL,              -- running, ended
  lookahead INT NOT NULL,
  created BIGINT NOT NULL,
  ended BIGINT NOT NULL,
  UNIQUE KEY projects_name (name)
) ENGINE=InnoDB;

-- The snapshot of a project: its files in delivery order candidates.
CREATE TABLE IF NOT EXISTS project_files (
  project_id BIGINT NOT NULL,
  idx INT NOT NULL,
  lfn VARCHAR(1024) NOT NULL,
  size BIGINT NOT NULL,
  state VARCHAR(16) NOT NULL,              -- pending, staging, ready, delivered, consumed, skipped, failed, lost, vanished
  priority INT NOT NULL,
  rated TINYINT NOT NULL,                  -- 1: priority was asked of the estimator
  consumer BIGINT NOT NULL,                -- cpid it was delivered to, 0 if none
  request_id BIGINT NOT NULL,              -- stager request holding the pin, 0 if none
  surl VARCHAR(2048) NOT NULL,
  turl VARCHAR(4096) NOT NULL,
  error VARCHAR(2048) NOT NULL,
  updated BIGINT NOT NULL,
  PRIMARY KEY (project_id, idx)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS project_consumers (
  project_id BIGINT NOT NULL,
  cpid BIGINT NOT NULL,
  name VARCHAR(255) NOT NULL,
  state VARCHAR(16) NOT NULL,              -- active, completed, bad, dead
  last_seen BIGINT NOT NULL,
  PRIMARY KEY (project_id, cpid)
) ENGINE=InnoDB;
