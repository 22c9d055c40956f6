-- Checksum mismatches traced to a source replica, and operators' verdicts.
-- A replica is flagged suspicious in the inventory (block_replicas.flags
-- bit 4) once its mismatches reach fileop.suspect_after_mismatches, or when
-- an operator declares it bad; clearing the flag resets the count. A new
-- table rather than new columns: CREATE TABLE IF NOT EXISTS reruns safely.
CREATE TABLE IF NOT EXISTS fileop_replica_mismatches (
  block_id BIGINT NOT NULL,
  site_id INT NOT NULL,
  mismatches INT NOT NULL DEFAULT 0,
  last_lfn VARCHAR(1024) NOT NULL DEFAULT '',
  reason VARCHAR(512) NOT NULL DEFAULT '',
  updated BIGINT NOT NULL,
  PRIMARY KEY (block_id, site_id)
);

-- A transfer an operator retried from a named source: while the row
-- exists, the dispatcher reads the file from that site only.
CREATE TABLE IF NOT EXISTS fileop_forced_sources (
  subscription_id BIGINT NOT NULL PRIMARY KEY,
  source_site_id INT NOT NULL,
  at BIGINT NOT NULL
);
