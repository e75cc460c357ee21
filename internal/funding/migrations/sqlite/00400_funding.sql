-- +goose Up
-- One row per trading login that funding has touched: the row lock that
-- serialises withdrawal requests on one account.
CREATE TABLE funding_logins (
    login      BIGINT PRIMARY KEY,
    currency   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE funding_deposits (
    id               TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    login            BIGINT NOT NULL,
    method_id        TEXT NOT NULL,
    method_kind      TEXT NOT NULL,
    provider         TEXT NOT NULL,
    payment_id       TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL,
    currency         TEXT NOT NULL,
    gross_minor      BIGINT NOT NULL,
    fee_minor        BIGINT NOT NULL,
    fee_paid_by      TEXT NOT NULL,
    net_minor        BIGINT NOT NULL,
    account_currency TEXT NOT NULL,
    credit_minor     BIGINT NOT NULL,
    fx_rate          TEXT NOT NULL DEFAULT '',
    push_id          TEXT NOT NULL DEFAULT '',
    failure          TEXT NOT NULL DEFAULT '',
    flag             TEXT NOT NULL DEFAULT '',
    lang             TEXT NOT NULL DEFAULT '',
    return_url       TEXT NOT NULL DEFAULT '',
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    final_at         BIGINT,
    UNIQUE (user_id, request_id)
);
CREATE INDEX funding_deposits_user ON funding_deposits (user_id, id);
CREATE INDEX funding_deposits_flag ON funding_deposits (flag) WHERE flag <> '';

CREATE TABLE funding_withdrawals (
    id              TEXT PRIMARY KEY,
    request_id      TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    email           TEXT NOT NULL DEFAULT '',
    country         TEXT NOT NULL DEFAULT '',
    kyc_level       INTEGER NOT NULL DEFAULT 0,
    lang            TEXT NOT NULL DEFAULT '',
    login           BIGINT NOT NULL,
    method_id       TEXT NOT NULL,
    method_kind     TEXT NOT NULL,
    provider        TEXT NOT NULL,
    payment_id      TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    fee_minor       BIGINT NOT NULL,
    fee_paid_by     TEXT NOT NULL,
    net_minor       BIGINT NOT NULL,
    destination     TEXT NOT NULL,
    auto_approved   INTEGER NOT NULL DEFAULT 0,
    decided_by      TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    debit_push_id   TEXT NOT NULL DEFAULT '',
    return_push_id  TEXT NOT NULL DEFAULT '',
    code_hash       TEXT NOT NULL DEFAULT '',
    code_expires_at BIGINT,
    code_attempts   INTEGER NOT NULL DEFAULT 0,
    code_sent       INTEGER NOT NULL DEFAULT 0,
    failure         TEXT NOT NULL DEFAULT '',
    flag            TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    final_at        BIGINT,
    UNIQUE (user_id, request_id)
);
CREATE INDEX funding_withdrawals_user ON funding_withdrawals (user_id, id);
CREATE INDEX funding_withdrawals_login ON funding_withdrawals (login, status);
CREATE INDEX funding_withdrawals_status ON funding_withdrawals (status, id);
CREATE INDEX funding_withdrawals_flag ON funding_withdrawals (flag) WHERE flag <> '';

-- Every status change of a deposit or withdrawal, for the status page and
-- the audit trail.
CREATE TABLE funding_history (
    owner_id    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '',
    at          BIGINT NOT NULL,
    PRIMARY KEY (owner_id, seq)
);

-- +goose Down
DROP TABLE funding_history;
DROP TABLE funding_withdrawals;
DROP TABLE funding_deposits;
DROP TABLE funding_logins;
