-- +goose Up
-- Bank accounts that users link for cash transfers (seed 003), verified by
-- two micro-deposits whose amounts the user confirms.
CREATE TABLE banking_banks (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    bank_name        TEXT NOT NULL,
    holder_name      TEXT NOT NULL,
    iban             TEXT NOT NULL,
    bic              TEXT NOT NULL,
    status           TEXT NOT NULL,
    micro1_minor     BIGINT NOT NULL,
    micro2_minor     BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    attempts_left    INTEGER NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX banking_banks_user ON banking_banks (user_id, created_at);

-- Cash transfers between a trading account and a linked bank.
CREATE TABLE banking_transfers (
    order_id          TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    login             BIGINT NOT NULL,
    bank_id           TEXT NOT NULL REFERENCES banking_banks (id),
    transaction_type  TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL,
    failure_reason    TEXT NOT NULL DEFAULT '',
    client_ref        TEXT NOT NULL DEFAULT '',
    broker_ref        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX banking_transfers_user ON banking_transfers (user_id, created_at);
CREATE INDEX banking_transfers_login ON banking_transfers (login, status);

-- +goose Down
DROP TABLE banking_transfers;
DROP TABLE banking_banks;
