-- Temporary uploads seen by a consistency run (drivers' .dynamo-tmp.* files).
ALTER TABLE consistency_runs ADD COLUMN temporary_files BIGINT NOT NULL DEFAULT 0;
