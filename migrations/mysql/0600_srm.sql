-- SRM storage element: asynchronous requests (StoRM's request_queue) and
-- their files (request_Get/Put/BoL + status_* merged). Ids are assigned by
-- the SE process, which owns these tables. Status columns hold the SRM
-- TStatusCode index (0 SRM_SUCCESS ... 17 SRM_REQUEST_QUEUED ...), as in
-- StoRM's storm_db. Times are unix seconds.
CREATE TABLE IF NOT EXISTS srm_requests (
  id BIGINT NOT NULL PRIMARY KEY,
  token VARCHAR(64) NOT NULL,
  rtype CHAR(3) NOT NULL,
  status INT NOT NULL,
  explanation VARCHAR(1024) NOT NULL DEFAULT '',
  client_dn VARCHAR(512) NOT NULL,
  fqans VARCHAR(2048) NOT NULL DEFAULT '',
  user_desc VARCHAR(255) NOT NULL DEFAULT '',
  protocols VARCHAR(255) NOT NULL DEFAULT '',
  overwrite CHAR(1) NOT NULL DEFAULT 'N',
  space_token VARCHAR(64) NOT NULL DEFAULT '',
  pin_lifetime BIGINT NOT NULL,
  created BIGINT NOT NULL,
  deadline BIGINT NOT NULL,
  n_files INT NOT NULL,
  UNIQUE KEY srm_requests_token (token),
  -- used by the picker (status = QUEUED, by id) and the GC (final, by age)
  KEY srm_requests_status (status, id),
  -- used by srmGetRequestTokens
  KEY srm_requests_dn (client_dn(255), user_desc)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS srm_files (
  id BIGINT NOT NULL PRIMARY KEY,
  request_id BIGINT NOT NULL,
  idx INT NOT NULL,
  surl VARCHAR(2048) NOT NULL,
  stfn VARCHAR(2048) NOT NULL,
  status INT NOT NULL,
  explanation VARCHAR(1024) NOT NULL DEFAULT '',
  expected_size BIGINT NOT NULL DEFAULT -1,
  file_size BIGINT NOT NULL DEFAULT -1,
  turl VARCHAR(4096) NOT NULL DEFAULT '',
  pin_expires BIGINT NOT NULL DEFAULT 0,
  -- used by StatusOf*, PutDone, Release, Abort (files of one request)
  KEY srm_files_request (request_id, idx),
  -- used by srmRm (abort on a SURL), ReleaseFiles without token, busy checks
  KEY srm_files_stfn (stfn(255), status),
  -- used by the expiry agent
  KEY srm_files_expiry (status, pin_expires)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
