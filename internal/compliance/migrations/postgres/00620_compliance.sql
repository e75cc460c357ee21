-- +goose Up
-- KYC profiles: one row per user whose level was set by staff or the
-- broker's KYC system. Users without a row have the configured default.
CREATE TABLE compliance_kyc (
    user_id    TEXT PRIMARY KEY,
    level      INTEGER NOT NULL,
    country    TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL,
    reference  TEXT NOT NULL DEFAULT '',
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every change of a KYC profile, with what it replaced.
CREATE TABLE compliance_kyc_history (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          TEXT NOT NULL,
    level            INTEGER NOT NULL,
    country          TEXT NOT NULL,
    source           TEXT NOT NULL,
    reference        TEXT NOT NULL,
    previous_level   INTEGER,
    previous_country TEXT NOT NULL DEFAULT '',
    actor            TEXT NOT NULL,
    at               BIGINT NOT NULL
);
CREATE INDEX compliance_kyc_history_user ON compliance_kyc_history (user_id, seq);

-- Limits per direction, method ('*' = any), currency and KYC level. Amounts
-- are minor units of the currency; 0 means no cap.
CREATE TABLE compliance_limits (
    direction       TEXT NOT NULL,
    method          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    kyc_level       INTEGER NOT NULL,
    per_day_minor   BIGINT NOT NULL DEFAULT 0,
    per_month_minor BIGINT NOT NULL DEFAULT 0,
    count_per_day   INTEGER NOT NULL DEFAULT 0,
    count_per_month INTEGER NOT NULL DEFAULT 0,
    updated_by      TEXT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (direction, method, currency, kyc_level)
);

-- The fraud rules' settings; a rule without a row has its defaults.
CREATE TABLE compliance_rules (
    name           TEXT PRIMARY KEY,
    enabled        INTEGER NOT NULL,
    count          INTEGER NOT NULL DEFAULT 0,
    window_seconds BIGINT NOT NULL DEFAULT 0,
    amounts        TEXT NOT NULL DEFAULT '',
    updated_by     TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- One row per user screened: the row lock that serialises a user's
-- screenings so two requests cannot both fit under one limit.
CREATE TABLE compliance_users (
    user_id    TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- What the rules count: every deposit and withdrawal funding reported
-- (confirmed = 1) or screened, with its outcome for the limits
-- ('open' or 'completed' count, 'failed' does not).
CREATE TABLE compliance_activity (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    method_id    TEXT NOT NULL DEFAULT '',
    method_kind  TEXT NOT NULL DEFAULT '',
    currency     TEXT NOT NULL DEFAULT '',
    amount_minor BIGINT NOT NULL DEFAULT 0,
    login        BIGINT NOT NULL DEFAULT 0,
    destination  TEXT NOT NULL DEFAULT '',
    card_country TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT '',
    outcome      TEXT NOT NULL DEFAULT 'open',
    confirmed    INTEGER NOT NULL DEFAULT 0,
    requested_at BIGINT NOT NULL,
    paid_at      BIGINT,
    completed_at BIGINT,
    declined_at  BIGINT,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX compliance_activity_user ON compliance_activity (user_id, kind, requested_at);
CREATE INDEX compliance_activity_destination ON compliance_activity (user_id, destination) WHERE destination <> '';

-- Transactions a fraud rule held for review: one row per transaction.
CREATE TABLE compliance_holds (
    txn_id       TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    stage        TEXT NOT NULL,
    rule         TEXT NOT NULL,
    rules        TEXT NOT NULL,
    explanation  TEXT NOT NULL,
    login        BIGINT NOT NULL DEFAULT 0,
    method_id    TEXT NOT NULL DEFAULT '',
    currency     TEXT NOT NULL DEFAULT '',
    amount_minor BIGINT NOT NULL DEFAULT 0,
    destination  TEXT NOT NULL DEFAULT '',
    card_country TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    opened_at    BIGINT,
    resolved_at  BIGINT,
    resolution   TEXT NOT NULL DEFAULT '',
    resolved_by  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX compliance_holds_state ON compliance_holds (state, created_at);

-- +goose Down
DROP TABLE compliance_holds;
DROP TABLE compliance_activity;
DROP TABLE compliance_users;
DROP TABLE compliance_rules;
DROP TABLE compliance_limits;
DROP TABLE compliance_kyc_history;
DROP TABLE compliance_kyc;
