-- The registry: copy and deletion requests, detox locks, queued injections.
-- Times are unix seconds. Users and roles live in the configuration, not here.

-- Copy and deletion requests share their tables (kind = 'copy' | 'deletion').
-- A request is never deleted: terminal ones stay with their status, so the
-- history is the table itself plus request_history for transitions.
CREATE TABLE IF NOT EXISTS requests (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(8) NOT NULL,
  group_name VARCHAR(64) NOT NULL DEFAULT '',
  num_copies INT NOT NULL DEFAULT 0,
  user_name VARCHAR(128) NOT NULL,
  dn VARCHAR(512) NOT NULL DEFAULT '',
  first_request BIGINT NOT NULL,
  last_request BIGINT NOT NULL,
  request_count INT NOT NULL DEFAULT 1,
  status VARCHAR(16) NOT NULL,
  reason VARCHAR(1024) NOT NULL DEFAULT '',
  updated BIGINT NOT NULL,
  -- sha256 of kind, items, sites, group and n: finds an identical open request (used by Create)
  dedup_key CHAR(64) CHARACTER SET ascii NOT NULL,
  KEY requests_dedup (dedup_key, status),
  KEY requests_kind_status (kind, status, id),
  KEY requests_user (user_name, id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS request_items (
  request_id BIGINT NOT NULL,
  item VARCHAR(640) CHARACTER SET ascii NOT NULL,
  PRIMARY KEY (request_id, item),
  KEY request_items_item (item) -- used by List filters on item
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS request_sites (
  request_id BIGINT NOT NULL,
  site VARCHAR(64) NOT NULL,
  PRIMARY KEY (request_id, site),
  KEY request_sites_site (site) -- used by List filters on site
) ENGINE=InnoDB;

-- What the Dealer (copies) or Detox (deletions) did for each item and site.
CREATE TABLE IF NOT EXISTS request_actions (
  request_id BIGINT NOT NULL,
  item VARCHAR(640) CHARACTER SET ascii NOT NULL,
  site VARCHAR(64) NOT NULL,
  status VARCHAR(16) NOT NULL,
  reason VARCHAR(1024) NOT NULL DEFAULT '',
  created BIGINT NOT NULL,
  updated BIGINT NOT NULL,
  PRIMARY KEY (request_id, item, site)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS request_history (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  request_id BIGINT NOT NULL,
  at BIGINT NOT NULL,
  status VARCHAR(16) NOT NULL,
  reason VARCHAR(1024) NOT NULL DEFAULT '',
  actor VARCHAR(128) NOT NULL DEFAULT '',
  KEY request_history_request (request_id, id)
) ENGINE=InnoDB;

-- Detox locks. unlocked = 0 while the lock is in force; unlocking sets it,
-- and the row stays as history.
CREATE TABLE IF NOT EXISTS detox_locks (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  item VARCHAR(640) CHARACTER SET ascii NOT NULL,
  site_names TEXT NOT NULL, -- JSON list of site names; [] = every site
  group_names TEXT NOT NULL, -- JSON list of group names; [] = every group
  locked BIGINT NOT NULL,
  expires BIGINT NOT NULL,
  unlocked BIGINT NOT NULL DEFAULT 0,
  user_name VARCHAR(128) NOT NULL,
  dn VARCHAR(512) NOT NULL DEFAULT '',
  service VARCHAR(64) NOT NULL DEFAULT '',
  comment VARCHAR(1024) NOT NULL DEFAULT '',
  KEY detox_locks_active (unlocked, expires), -- used by ActiveLocks
  KEY detox_locks_owner (user_name, service, unlocked) -- used by SetLocks
) ENGINE=InnoDB;

-- Injection documents queued by the API and applied by the inventory writer.
CREATE TABLE IF NOT EXISTS queued_injections (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  queued BIGINT NOT NULL,
  user_name VARCHAR(128) NOT NULL,
  doc LONGTEXT NOT NULL,
  status VARCHAR(16) NOT NULL, -- queued, applied, failed
  applied BIGINT NOT NULL DEFAULT 0,
  result TEXT NOT NULL,
  KEY queued_injections_status (status, id)
) ENGINE=InnoDB;
