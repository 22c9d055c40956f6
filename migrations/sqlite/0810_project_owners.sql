-- Who started each project: only that user or an operator may attach
-- processes to it, take files from it or end it. A table of its own rather
-- than a column: CREATE TABLE IF NOT EXISTS reruns safely on every dialect.
CREATE TABLE IF NOT EXISTS project_owners (
  project_id BIGINT NOT NULL PRIMARY KEY,
  user_name VARCHAR(128) NOT NULL
);
