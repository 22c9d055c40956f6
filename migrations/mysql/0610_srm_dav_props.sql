-- WebDAV dead properties (PROPPATCH), per site file name. COPY copies them,
-- MOVE moves them, DELETE drops them (a collection's with everything below).
-- id is sha256(stfn NUL ns NUL name) in hex: long names and namespaces stay
-- unique under InnoDB's key length limit.
CREATE TABLE IF NOT EXISTS srm_dav_props (
  id CHAR(64) NOT NULL PRIMARY KEY,
  stfn VARCHAR(4096) NOT NULL,
  ns VARCHAR(1024) NOT NULL,
  name VARCHAR(1024) NOT NULL,
  value MEDIUMTEXT NOT NULL,
  -- used by the per-resource reads and the prefix scans of collection COPY/MOVE/DELETE
  INDEX srm_dav_props_stfn (stfn(512))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
