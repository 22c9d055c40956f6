-- The writer lease advertises the holder's REST API, so that a CLI write
-- refused on the lease can say where to send it.
ALTER TABLE scheduler_lease ADD COLUMN address VARCHAR(255) NOT NULL DEFAULT '';
