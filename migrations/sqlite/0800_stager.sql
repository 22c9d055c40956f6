-- See the MySQL file for column comments.
-- The stager (SRM request adapter) and projects (SAM-style delivery of a
-- dataset to consumer processes). Times are unix nanoseconds (BIGINT).

-- One row per stager request (get, ls, mkdir, delete, copy). Rows stay after
-- completion for the owner to look up; a get in state 'ready' holds an SRM
-- pin until it is released or expires.
CREATE TABLE IF NOT EXISTS stager_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind VARCHAR(16) NOT NULL,
  owner VARCHAR(64) NOT NULL,
  surl VARCHAR(2048) NOT NULL,
  dest VARCHAR(2048) NOT NULL,
  protocols VARCHAR(255) NOT NULL,
  state VARCHAR(16) NOT NULL,
  token VARCHAR(128) NOT NULL,
  dest_token VARCHAR(128) NOT NULL,
  turl VARCHAR(4096) NOT NULL,
  error VARCHAR(2048) NOT NULL,
  result TEXT NOT NULL,
  created BIGINT NOT NULL,
  deadline BIGINT NOT NULL,
  next_poll BIGINT NOT NULL,
  delay BIGINT NOT NULL,
  polls INT NOT NULL,
  pin_lifetime BIGINT NOT NULL,
  pin_until BIGINT NOT NULL,
  cleanup TINYINT NOT NULL,
  webhook VARCHAR(1024) NOT NULL,
  notified TINYINT NOT NULL,
  updated BIGINT NOT NULL
);
-- used by the poller at start-up (everything not finished and cleaned up)
CREATE INDEX IF NOT EXISTS stager_requests_state ON stager_requests (state, cleanup);

CREATE TABLE IF NOT EXISTS projects (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(255) NOT NULL,
  dataset VARCHAR(512) NOT NULL,
  site VARCHAR(128) NOT NULL,
  state VARCHAR(16) NOT NULL,
  lookahead INT NOT NULL,
  created BIGINT NOT NULL,
  ended BIGINT NOT NULL,
  UNIQUE (name)
);

-- The snapshot of a project: its files in delivery order candidates.
CREATE TABLE IF NOT EXISTS project_files (
  project_id BIGINT NOT NULL,
  idx INT NOT NULL,
  lfn VARCHAR(1024) NOT NULL,
  size BIGINT NOT NULL,
  state VARCHAR(16) NOT NULL,
  priority INT NOT NULL,
  rated TINYINT NOT NULL,
  consumer BIGINT NOT NULL,
  request_id BIGINT NOT NULL,
  surl VARCHAR(2048) NOT NULL,
  turl VARCHAR(4096) NOT NULL,
  error VARCHAR(2048) NOT NULL,
  updated BIGINT NOT NULL,
  PRIMARY KEY (project_id, idx)
);

CREATE TABLE IF NOT EXISTS project_consumers (
  project_id BIGINT NOT NULL,
  cpid BIGINT NOT NULL,
  name VARCHAR(255) NOT NULL,
  state VARCHAR(16) NOT NULL,
  last_seen BIGINT NOT NULL,
  PRIMARY KEY (project_id, cpid)
);
