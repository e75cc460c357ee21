-- +goose Up
CREATE TABLE ledger_accounts (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    currency        TEXT NOT NULL,
    normal          TEXT NOT NULL CHECK (normal IN ('credit', 'debit')),
    lower_bound     BIGINT,
    upper_bound     BIGINT,
    debits_posted   BIGINT NOT NULL DEFAULT 0,
    credits_posted  BIGINT NOT NULL DEFAULT 0,
    debits_pending  BIGINT NOT NULL DEFAULT 0,
    credits_pending BIGINT NOT NULL DEFAULT 0,
    metadata        TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);

CREATE TABLE ledger_transfers (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    action            TEXT NOT NULL,
    debit_account_id  TEXT NOT NULL REFERENCES ledger_accounts (id),
    credit_account_id TEXT NOT NULL REFERENCES ledger_accounts (id),
    amount            BIGINT NOT NULL CHECK (amount >= 0),
    currency          TEXT NOT NULL,
    code              TEXT NOT NULL DEFAULT '',
    metadata          TEXT NOT NULL DEFAULT '',
    pending_id        TEXT UNIQUE,
    expires_at        BIGINT,
    status            TEXT NOT NULL,
    moves_balance     SMALLINT NOT NULL,
    posted_at         BIGINT NOT NULL
);
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id, posted_at) WHERE moves_balance = 1;
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id, posted_at) WHERE moves_balance = 1;
CREATE INDEX ledger_transfers_pending ON ledger_transfers (expires_at) WHERE status = 'pending';

-- +goose Down
DROP TABLE ledger_transfers;
DROP TABLE ledger_accounts;
