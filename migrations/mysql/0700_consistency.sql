-- Site consistency: one row per run (its counts and outcome; the lists are
-- NDJSON files in work_dir) and the confirmations of missing files across
-- consecutive runs. Times are unix seconds.

-- status: running (in progress or interrupted: the next run of the site
-- resumes its listing checkpoint), done, alert (a safety valve stopped all
-- actions), failed.
CREATE TABLE IF NOT EXISTS consistency_runs (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  site VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
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
  dirs_removed BIGINT NOT NULL DEFAULT 0,
  KEY consistency_runs_site (site, id)      -- used by: latest run per site, resume
) ENGINE=InnoDB;

-- A file missing (or corrupt) at a site, per run it was seen in. Acted on
-- only when last_run is the site's previous completed run (two
-- consecutive runs); rows not seen again are deleted.
CREATE TABLE IF NOT EXISTS consistency_missing (
  site_id INT NOT NULL,
  file_id BIGINT NOT NULL,
  first_run BIGINT NOT NULL,
  last_run BIGINT NOT NULL,
  PRIMARY KEY (site_id, file_id)
) ENGINE=InnoDB;
