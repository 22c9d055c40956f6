-- Dynamic space reservations (srmReserveSpace) inside storage areas. size is
-- the guaranteed bytes; used grows at srmPutDone of files written with the
-- token. expires is unix seconds, 0 = no lifetime limit.
CREATE TABLE IF NOT EXISTS srm_spaces (
  token VARCHAR(64) NOT NULL PRIMARY KEY,
  area VARCHAR(64) NOT NULL,
  owner_dn VARCHAR(512) NOT NULL,
  description VARCHAR(255) NOT NULL DEFAULT '',
  size BIGINT NOT NULL,
  used BIGINT NOT NULL DEFAULT 0,
  created BIGINT NOT NULL,
  expires BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
