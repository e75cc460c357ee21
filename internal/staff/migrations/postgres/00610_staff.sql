-- +goose Up
-- Back-office staff. email_key is the lower-cased address (unique, so
-- addresses are case-insensitive). totp_secret is set once the first good
-- code at login confirmed the enrolment (totp_enrolled_at); totp_last_step
-- is the replay guard: the last accepted 30-second step. failed_logins
-- counts wrong passwords and codes in a row; locked_until is set when they
-- reach the limit.
CREATE TABLE staff_members (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    email_key        TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL,
    status           TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    totp_secret      TEXT NOT NULL DEFAULT '',
    totp_enrolled_at BIGINT,
    totp_last_step   BIGINT NOT NULL DEFAULT 0,
    failed_logins    INTEGER NOT NULL DEFAULT 0,
    locked_until     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_login_at    BIGINT
);

-- A login between the password and the TOTP code: the hash of its opaque
-- token, and the new secret when the member is enrolling.
CREATE TABLE staff_pending_logins (
    token_hash    TEXT PRIMARY KEY,
    member_id     TEXT NOT NULL REFERENCES staff_members (id),
    enrol_secret  TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX staff_pending_logins_member ON staff_pending_logins (member_id);

-- A signed-in member: the hash of the session token, its CSRF token, and
-- the sliding idle expiry under the absolute one.
CREATE TABLE staff_sessions (
    token_hash      TEXT PRIMARY KEY,
    member_id       TEXT NOT NULL REFERENCES staff_members (id),
    csrf            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX staff_sessions_member ON staff_sessions (member_id);

-- +goose Down
DROP TABLE staff_sessions;
DROP TABLE staff_pending_logins;
DROP TABLE staff_members;
