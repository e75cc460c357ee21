-- +goose Up
-- The back office: who the deposit's customer is (for notifications and the
-- fraud rules), compliance holds and four-eyes approval.
ALTER TABLE funding_deposits ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE funding_deposits ADD COLUMN country TEXT NOT NULL DEFAULT '';
ALTER TABLE funding_deposits ADD COLUMN hold_rule TEXT NOT NULL DEFAULT '';
ALTER TABLE funding_deposits ADD COLUMN hold_note TEXT NOT NULL DEFAULT '';
ALTER TABLE funding_withdrawals ADD COLUMN hold_rule TEXT NOT NULL DEFAULT '';
ALTER TABLE funding_withdrawals ADD COLUMN hold_note TEXT NOT NULL DEFAULT '';
ALTER TABLE funding_withdrawals ADD COLUMN first_approved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE funding_withdrawals ADD COLUMN first_approved_at BIGINT;
CREATE INDEX funding_deposits_status ON funding_deposits (status, id);

-- +goose Down
DROP INDEX funding_deposits_status;
ALTER TABLE funding_withdrawals DROP COLUMN first_approved_at;
ALTER TABLE funding_withdrawals DROP COLUMN first_approved_by;
ALTER TABLE funding_withdrawals DROP COLUMN hold_note;
ALTER TABLE funding_withdrawals DROP COLUMN hold_rule;
ALTER TABLE funding_deposits DROP COLUMN hold_note;
ALTER TABLE funding_deposits DROP COLUMN hold_rule;
ALTER TABLE funding_deposits DROP COLUMN country;
ALTER TABLE funding_deposits DROP COLUMN email;
