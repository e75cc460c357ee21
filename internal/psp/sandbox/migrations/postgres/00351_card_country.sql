-- The issuing country (ISO 3166-1 alpha-2) of the test card a payment was
-- made with, reported as psp.Instrument.Country. Payments made before this
-- column existed report none.

-- +goose Up
ALTER TABLE sandbox_payments ADD COLUMN card_country TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sandbox_payments DROP COLUMN card_country;
