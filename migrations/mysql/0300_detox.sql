-- Detox: cycle history and dataset accesses. Names (not inventory ids) are
-- stored so that history survives datasets and sites leaving the inventory.
-- Times are unix seconds.

-- One row per cycle, with the policy text it ran.
CREATE TABLE IF NOT EXISTS detox_cycles (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  partition_name VARCHAR(64) NOT NULL,
  policy_file VARCHAR(512) NOT NULL DEFAULT '',
  policy_text MEDIUMTEXT NOT NULL,
  inventory_seq BIGINT NOT NULL,
  started BIGINT NOT NULL,
  finished BIGINT NOT NULL DEFAULT 0,
  status VARCHAR(16) NOT NULL,
  dry_run TINYINT NOT NULL DEFAULT 0,
  iterations INT NOT NULL DEFAULT 0,
  deleted_bytes BIGINT NOT NULL DEFAULT 0,
  deleted_replicas BIGINT NOT NULL DEFAULT 0,
  message TEXT NOT NULL,
  -- used by the cycles list (newest first per partition)
  KEY detox_cycles_partition (partition_name, id)
) ENGINE=InnoDB;

-- Per cycle and target site: quota, volumes before/after, outcome.
CREATE TABLE IF NOT EXISTS detox_cycle_sites (
  cycle_id BIGINT NOT NULL,
  site_name VARCHAR(64) NOT NULL,
  quota BIGINT NOT NULL,
  before_bytes BIGINT NOT NULL,
  after_bytes BIGINT NOT NULL,
  triggered TINYINT NOT NULL,
  released TINYINT NOT NULL,
  deleted_bytes BIGINT NOT NULL,
  deleted_replicas BIGINT NOT NULL,
  deleted_files BIGINT NOT NULL,
  protected_bytes BIGINT NOT NULL,
  iterations INT NOT NULL,
  PRIMARY KEY (cycle_id, site_name)
) ENGINE=InnoDB;

-- Per cycle, dataset replica and decision: the line (0 = default) and reason.
-- blocks is empty when the row covers every block replica of the replica.
CREATE TABLE IF NOT EXISTS detox_cycle_replicas (
  cycle_id BIGINT NOT NULL,
  site_name VARCHAR(64) NOT NULL,
  dataset_name VARCHAR(512) CHARACTER SET ascii NOT NULL,
  blocks MEDIUMTEXT NOT NULL,
  decision VARCHAR(8) NOT NULL,
  action VARCHAR(16) NOT NULL,
  line INT NOT NULL,
  reason VARCHAR(64) NOT NULL,
  size BIGINT NOT NULL,
  files BIGINT NOT NULL,
  -- used by the per-site decision listing
  KEY detox_cycle_replicas_site (cycle_id, site_name),
  -- used by explain
  KEY detox_cycle_replicas_dataset (cycle_id, dataset_name)
) ENGINE=InnoDB;

-- Dataset accesses, aggregated per dataset, site and UTC day.
CREATE TABLE IF NOT EXISTS detox_accesses (
  dataset_name VARCHAR(512) CHARACTER SET ascii NOT NULL,
  site_name VARCHAR(64) CHARACTER SET ascii NOT NULL,
  day BIGINT NOT NULL,
  num_access BIGINT NOT NULL,
  last_access BIGINT NOT NULL,
  PRIMARY KEY (dataset_name, site_name, day)
) ENGINE=InnoDB;
