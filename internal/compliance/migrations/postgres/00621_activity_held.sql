-- +goose Up
-- held marks the activity of a transaction a fraud rule held (it has a row
-- in compliance_holds), so that a status change of one that was never
-- held needs no look at the review queue.
ALTER TABLE compliance_activity ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
UPDATE compliance_activity SET held = 1 WHERE id IN (SELECT txn_id FROM compliance_holds);

-- +goose Down
ALTER TABLE compliance_activity DROP COLUMN held;
