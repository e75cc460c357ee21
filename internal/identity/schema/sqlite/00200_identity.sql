-- +goose Up
CREATE TABLE identity_users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL DEFAULT '',
    language      TEXT NOT NULL DEFAULT '',
    ctid_user_id  BIGINT UNIQUE,
    partner_id    TEXT NOT NULL DEFAULT '',
    source        TEXT NOT NULL DEFAULT '',
    utm_source    TEXT NOT NULL DEFAULT '',
    utm_medium    TEXT NOT NULL DEFAULT '',
    utm_campaign  TEXT NOT NULL DEFAULT '',
    utm_term      TEXT NOT NULL DEFAULT '',
    utm_content   TEXT NOT NULL DEFAULT '',
    gclid         TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    inapp_issued  INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE identity_accounts (
    id                     TEXT PRIMARY KEY,
    platform               TEXT NOT NULL,
    environment            TEXT NOT NULL CHECK (environment IN ('demo', 'live')),
    login                  BIGINT NOT NULL CHECK (login > 0),
    user_id                TEXT NOT NULL REFERENCES identity_users (id),
    currency               TEXT NOT NULL,
    kind                   TEXT NOT NULL CHECK (kind IN ('trading', 'signal')),
    ctid_trader_account_id BIGINT,
    created_at             BIGINT NOT NULL,
    UNIQUE (platform, environment, login)
);
CREATE INDEX identity_accounts_user ON identity_accounts (user_id);
CREATE INDEX identity_accounts_login ON identity_accounts (login);

CREATE TABLE identity_tokens (
    hash          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    purpose       TEXT NOT NULL DEFAULT '',
    user_id       TEXT REFERENCES identity_users (id),
    account_login BIGINT,
    remember      INTEGER NOT NULL DEFAULT 0,
    parent_hash   TEXT,
    secret_ref    TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    consumed_at   BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX identity_tokens_user ON identity_tokens (user_id, kind);
CREATE INDEX identity_tokens_kind ON identity_tokens (kind, expires_at);

-- +goose Down
DROP TABLE identity_tokens;
DROP TABLE identity_accounts;
DROP TABLE identity_users;
