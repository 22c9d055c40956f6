-- Site consistency: runs and missing-file confirmations. See the MySQL
-- file for column comments.
CREATE TABLE IF NOT EXISTS consistency_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  site VARCHAR(64) NOT NULL,
  dry_run TINYINT NOT NULL,
  status VARCHAR(16) NOT NULL,
  started_at BIGINT NOT NULL,
  ended_at BIGINT NOT NULL DEFAULT 0,
  work_dir VARCHAR(1024) NOT NULL,
  message TEXT NOT NULL,
  listed_dirs BIGINT NOT NULL DEFAULT 0,
  site_files BIGINT NOT NULL DEFAULT 0,
  site_bytes BIGINT NOT NULL DEFAULT 0,
  expected_files BIGINT NOT NULL DEFAULT 0,
  expected_bytes BIGINT NOT NULL DEFAULT 0,
  matched BIGINT NOT NULL DEFAULT 0,
  missing BIGINT NOT NULL DEFAULT 0,
  missing_bytes BIGINT NOT NULL DEFAULT 0,
  orphans BIGINT NOT NULL DEFAULT 0,
  orphan_bytes BIGINT NOT NULL DEFAULT 0,
  size_mismatch BIGINT NOT NULL DEFAULT 0,
  checksum_mismatch BIGINT NOT NULL DEFAULT 0,
  stalled BIGINT NOT NULL DEFAULT 0,
  skipped BIGINT NOT NULL DEFAULT 0,
  empty_dirs BIGINT NOT NULL DEFAULT 0,
  transfers_queued BIGINT NOT NULL DEFAULT 0,
  deletions_queued BIGINT NOT NULL DEFAULT 0,
  replicas_updated BIGINT NOT NULL DEFAULT 0,
  dirs_removed BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS consistency_runs_site ON consistency_runs (site, id);

CREATE TABLE IF NOT EXISTS consistency_missing (
  site_id INT NOT NULL,
  file_id BIGINT NOT NULL,
  first_run BIGINT NOT NULL,
  last_run BIGINT NOT NULL,
  PRIMARY KEY (site_id, file_id)
);
