-- The inventory. Ids are assigned by the one writer (never AUTO_INCREMENT), so
-- that memory and database agree on them and a replayed change is idempotent.
-- Times are unix seconds (BIGINT). Sizes are bytes.
CREATE TABLE IF NOT EXISTS sites (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  host VARCHAR(256) NOT NULL DEFAULT '',
  storage_type VARCHAR(8) NOT NULL,
  backend VARCHAR(512) NOT NULL DEFAULT '',
  status VARCHAR(16) NOT NULL,
  UNIQUE KEY sites_name (name)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS owner_groups (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  olevel VARCHAR(8) NOT NULL,
  UNIQUE KEY owner_groups_name (name)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS partitions (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  UNIQUE KEY partitions_name (name)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS quotas (
  site_id INT NOT NULL,
  partition_id INT NOT NULL,
  quota BIGINT NOT NULL,
  PRIMARY KEY (site_id, partition_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS datasets (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  status VARCHAR(16) NOT NULL,
  data_type VARCHAR(16) NOT NULL,
  software_version VARCHAR(64) NOT NULL DEFAULT '',
  last_update BIGINT NOT NULL DEFAULT 0,
  is_open TINYINT NOT NULL DEFAULT 0,
  UNIQUE KEY datasets_name (name)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS blocks (
  id INT NOT NULL PRIMARY KEY,
  dataset_id INT NOT NULL,
  name VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  size BIGINT NOT NULL,
  num_files INT NOT NULL,
  is_open TINYINT NOT NULL DEFAULT 0,
  last_update BIGINT NOT NULL DEFAULT 0,
  UNIQUE KEY blocks_dataset_name (dataset_id, name)
) ENGINE=InnoDB;

-- Files are never held in memory: read per block (files_block).
CREATE TABLE IF NOT EXISTS files (
  id BIGINT NOT NULL PRIMARY KEY,
  block_id INT NOT NULL,
  lfn VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  size BIGINT NOT NULL,
  adler32 CHAR(8) NOT NULL DEFAULT '',
  UNIQUE KEY files_lfn (lfn),
  KEY files_block (block_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS dataset_replicas (
  dataset_id INT NOT NULL,
  site_id INT NOT NULL,
  growing TINYINT NOT NULL DEFAULT 0,
  group_id INT NOT NULL DEFAULT 0,
  PRIMARY KEY (dataset_id, site_id)
) ENGINE=InnoDB;

-- flags: bit 0 custodial, bit 1 pending deletion (left the owner's quota,
-- physical removal queued). A replica is complete when it has no row in
-- block_replica_files and size equals the block's size.
CREATE TABLE IF NOT EXISTS block_replicas (
  block_id INT NOT NULL,
  site_id INT NOT NULL,
  group_id INT NOT NULL DEFAULT 0,
  flags INT NOT NULL DEFAULT 0,
  is_complete TINYINT NOT NULL DEFAULT 1,
  size BIGINT NOT NULL,
  num_files INT NOT NULL,
  last_update BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (block_id, site_id),
  KEY block_replicas_site (site_id)
) ENGINE=InnoDB;

-- The files present at a site for incomplete block replicas only.
CREATE TABLE IF NOT EXISTS block_replica_files (
  block_id INT NOT NULL,
  site_id INT NOT NULL,
  file_id BIGINT NOT NULL,
  PRIMARY KEY (block_id, site_id, file_id)
) ENGINE=InnoDB;

-- The change log: every applied inventory update, in order. Peers and
-- restarted writers replay from it; seq is the inventory's version.
CREATE TABLE IF NOT EXISTS inventory_changes (
  seq BIGINT NOT NULL PRIMARY KEY,
  at BIGINT NOT NULL,
  kind VARCHAR(32) NOT NULL,
  body MEDIUMTEXT NOT NULL
) ENGINE=InnoDB;
