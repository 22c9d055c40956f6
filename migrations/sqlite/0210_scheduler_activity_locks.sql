-- Dynamo's application locks (applock/lock, applock/unlock): a queue per
-- application. The oldest entry's user and service hold the lock; their
-- further entries deepen it; others wait behind. While any entry exists the
-- application is not scheduled, as with a pause.
CREATE TABLE IF NOT EXISTS scheduler_activity_locks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app VARCHAR(128) NOT NULL,
  user_name VARCHAR(128) NOT NULL,
  service VARCHAR(128) NOT NULL DEFAULT '',
  note VARCHAR(512) NULL,
  locked_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS scheduler_activity_locks_app ON scheduler_activity_locks (app, id);
