-- WebDAV dead properties (PROPPATCH), per site file name. COPY copies them,
-- MOVE moves them, DELETE drops them (a collection's with everything below).
-- id is sha256(stfn NUL ns NUL name) in hex.
CREATE TABLE IF NOT EXISTS srm_dav_props (
  id TEXT NOT NULL PRIMARY KEY,
  stfn TEXT NOT NULL,
  ns TEXT NOT NULL,
  name TEXT NOT NULL,
  value TEXT NOT NULL
);
-- used by the per-resource reads and the prefix scans of collection COPY/MOVE/DELETE
CREATE INDEX IF NOT EXISTS srm_dav_props_stfn ON srm_dav_props (stfn);
