-- Detox: cycle history and dataset accesses. Names (not inventory ids) are
-- stored so that history survives datasets and sites leaving the inventory.
-- Times are unix seconds.

-- One row per cycle, with the policy text it ran.
CREATE TABLE IF NOT EXISTS detox_cycles (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  partition_name VARCHAR(64) NOT NULL,
  policy_file VARCHAR(512) NOT NULL DEFAULT '',
  policy_text TEXT NOT NULL,
  inventory_seq BIGINT NOT NULL,
  started BIGINT NOT NULL,
  finished BIGINT NOT NULL DEFAULT 0,
  status VARCHAR(16) NOT NULL,
  dry_run TINYINT NOT NULL DEFAULT 0,
  iterations INT NOT NULL DEFAULT 0,
  deleted_bytes BIGINT NOT NULL DEFAULT 0,
  deleted_replicas BIGINT NOT NULL DEFAULT 0,
  message TEXT NOT NULL
);

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
);

-- Per cycle, dataset replica and decision: the line (0 = default) and reason.
-- blocks is empty when the row covers every block replica of the replica.
CREATE TABLE IF NOT EXISTS detox_cycle_replicas (
  cycle_id BIGINT NOT NULL,
  site_name VARCHAR(64) NOT NULL,
  dataset_name VARCHAR(512) NOT NULL,
  blocks TEXT NOT NULL,
  decision VARCHAR(8) NOT NULL,
  action VARCHAR(16) NOT NULL,
  line INT NOT NULL,
  reason VARCHAR(64) NOT NULL,
  size BIGINT NOT NULL,
  files BIGINT NOT NULL
);

-- Dataset accesses, aggregated per dataset, site and UTC day.
CREATE TABLE IF NOT EXISTS detox_accesses (
  dataset_name VARCHAR(512) NOT NULL,
  site_name VARCHAR(64) NOT NULL,
  day BIGINT NOT NULL,
  num_access BIGINT NOT NULL,
  last_access BIGINT NOT NULL,
  PRIMARY KEY (dataset_name, site_name, day)
);

-- used by the cycles list (newest first per partition)
CREATE INDEX IF NOT EXISTS detox_cycles_partition ON detox_cycles (partition_name, id);
-- used by the per-site decision listing
CREATE INDEX IF NOT EXISTS detox_cycle_replicas_site ON detox_cycle_replicas (cycle_id, site_name);
-- used by explain
CREATE INDEX IF NOT EXISTS detox_cycle_replicas_dataset ON detox_cycle_replicas (cycle_id, dataset_name);
