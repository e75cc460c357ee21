-- +goose Up
-- Back-office search and export read deposits and withdrawals newest first.
CREATE INDEX funding_deposits_created ON funding_deposits (created_at, id);
CREATE INDEX funding_withdrawals_created ON funding_withdrawals (created_at, id);

-- +goose Down
DROP INDEX funding_withdrawals_created;
DROP INDEX funding_deposits_created;
