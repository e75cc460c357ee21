-- The sandbox payment provider's own state (internal/psp/sandbox). In
-- production these would live at the provider, not in the cashier's
-- database. No card number is ever stored: only brand and last four digits.
-- Instants are BIGINT microseconds since the Unix epoch (UTC).

-- +goose Up
CREATE TABLE sandbox_payments (
    id                     TEXT    PRIMARY KEY,
    object                 TEXT    NOT NULL CHECK (object IN ('payment', 'payout')),
    reference              TEXT    NOT NULL,
    method                 TEXT    NOT NULL,
    currency               TEXT    NOT NULL,
    amount_minor           BIGINT  NOT NULL,
    received_minor         BIGINT,
    status                 TEXT    NOT NULL,
    decline_code           TEXT    NOT NULL DEFAULT '',
    message                TEXT    NOT NULL DEFAULT '',
    scenario               TEXT    NOT NULL DEFAULT '',
    card_brand             TEXT    NOT NULL DEFAULT '',
    card_last4             TEXT    NOT NULL DEFAULT '',
    card_token             TEXT    NOT NULL DEFAULT '',
    otp_attempts           INTEGER NOT NULL DEFAULT 0,
    bank_reference         TEXT,
    crypto_address         TEXT,
    network                TEXT    NOT NULL DEFAULT '',
    confirmations          INTEGER NOT NULL DEFAULT 0,
    required_confirmations INTEGER NOT NULL DEFAULT 0,
    destination            TEXT    NOT NULL DEFAULT '',
    return_url             TEXT    NOT NULL DEFAULT '',
    description            TEXT    NOT NULL DEFAULT '',
    customer_email         TEXT    NOT NULL DEFAULT '',
    request_hash           TEXT    NOT NULL,
    seq                    BIGINT  NOT NULL,
    expires_at             BIGINT,
    created_at             BIGINT  NOT NULL,
    updated_at             BIGINT  NOT NULL
);
CREATE UNIQUE INDEX sandbox_payments_reference ON sandbox_payments (object, reference);
CREATE UNIQUE INDEX sandbox_payments_bank_reference ON sandbox_payments (bank_reference);
CREATE UNIQUE INDEX sandbox_payments_crypto_address ON sandbox_payments (crypto_address);
CREATE INDEX sandbox_payments_created ON sandbox_payments (created_at);

CREATE TABLE sandbox_cards (
    token          TEXT   PRIMARY KEY,
    brand          TEXT   NOT NULL,
    last4          TEXT   NOT NULL,
    payout_outcome TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE sandbox_events (
    id           TEXT    PRIMARY KEY,
    payment_id   TEXT    NOT NULL REFERENCES sandbox_payments (id),
    type         TEXT    NOT NULL,
    seq          BIGINT  NOT NULL,
    body         BLOB    NOT NULL,
    created_at   BIGINT  NOT NULL,
    deliveries   INTEGER NOT NULL DEFAULT 0,
    delivered_at BIGINT,
    last_status  INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sandbox_events_payment ON sandbox_events (payment_id, id);

CREATE TABLE sandbox_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE sandbox_settings;
DROP TABLE sandbox_events;
DROP TABLE sandbox_cards;
DROP TABLE sandbox_payments;
