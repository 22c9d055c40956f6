-- The Dealer's history: one row per cycle (with the seed and configuration
-- that make it reproducible), one per proposal and one per decision.
-- Times are unix nanoseconds.
CREATE TABLE IF NOT EXISTS dealer_cycles (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  started_ns BIGINT NOT NULL,
  finished_ns BIGINT NOT NULL DEFAULT 0,
  partition_name VARCHAR(64) NOT NULL,
  seed VARCHAR(20) NOT NULL,
  snapshot_seq BIGINT NOT NULL,
  dry_run TINYINT NOT NULL,
  status VARCHAR(16) NOT NULL,
  num_proposals INT NOT NULL,
  num_copies INT NOT NULL,
  num_rejections INT NOT NULL,
  volume BIGINT NOT NULL,
  config MEDIUMTEXT NOT NULL,
  error TEXT
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS dealer_proposals (
  cycle_id BIGINT NOT NULL,
  idx INT NOT NULL,
  plugin VARCHAR(32) NOT NULL,
  priority INT NOT NULL,
  item VARCHAR(1024) NOT NULL,
  destination VARCHAR(64) NOT NULL DEFAULT '',
  group_name VARCHAR(64) NOT NULL DEFAULT '',
  request_id BIGINT NOT NULL DEFAULT 0,
  note VARCHAR(512) NOT NULL DEFAULT '',
  PRIMARY KEY (cycle_id, idx)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS dealer_decisions (
  cycle_id BIGINT NOT NULL,
  idx INT NOT NULL,
  accepted TINYINT NOT NULL,
  reason VARCHAR(64) NOT NULL DEFAULT '',
  site VARCHAR(64) NOT NULL DEFAULT '',
  bytes BIGINT NOT NULL DEFAULT 0,
  detail VARCHAR(1024) NOT NULL DEFAULT '',
  PRIMARY KEY (cycle_id, idx),
  -- used by rejections and reason counts of a cycle
  KEY dealer_decisions_reason (cycle_id, reason)
) ENGINE=InnoDB;
