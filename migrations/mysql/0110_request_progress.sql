-- Progress of request actions and approvals of deletion requests. New
-- tables rather than new columns: CREATE TABLE IF NOT EXISTS reruns safely
-- on both MySQL and MariaDB, ALTER TABLE ... ADD COLUMN does not.

-- Files and bytes done of each request action (request_actions row with the
-- same key). The totals are recorded when the action starts, so a deletion
-- keeps them once its replicas are gone.
CREATE TABLE IF NOT EXISTS request_progress (
  request_id BIGINT NOT NULL,
  item VARCHAR(640) CHARACTER SET ascii NOT NULL,
  site VARCHAR(64) NOT NULL,
  files_done BIGINT NOT NULL DEFAULT 0,
  files_total BIGINT NOT NULL DEFAULT 0,
  bytes_done BIGINT NOT NULL DEFAULT 0,
  bytes_total BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (request_id, item, site)
) ENGINE=InnoDB;

-- Who approved a deletion request (an operator, or "policy" when every
-- replica it deletes is owned by one of the requester's groups).
CREATE TABLE IF NOT EXISTS request_approvals (
  request_id BIGINT NOT NULL PRIMARY KEY,
  approved_by VARCHAR(128) NOT NULL,
  at BIGINT NOT NULL
) ENGINE=InnoDB;
