-- +goose Up
-- The second factor each user has chosen ('none' while only a TOTP
-- enrolment is pending). totp_pending_secret is set when TOTP enrolment
-- starts and becomes totp_secret once a code proved it (totp_confirmed_at).
-- totp_last_step is the replay guard: the last accepted 30-second step.
CREATE TABLE twofactor_enrolments (
    user_id           TEXT PRIMARY KEY,
    method            TEXT NOT NULL,
    email             TEXT NOT NULL DEFAULT '',
    phone             TEXT NOT NULL DEFAULT '',
    name              TEXT NOT NULL DEFAULT '',
    totp_secret       TEXT NOT NULL DEFAULT '',
    totp_pending      TEXT NOT NULL DEFAULT '',
    totp_confirmed_at BIGINT,
    totp_last_step    BIGINT NOT NULL DEFAULT 0,
    updated_at        BIGINT NOT NULL
);

-- One code challenge per (user, purpose, ref): the code is stored hashed,
-- with its expiry, the wrong attempts still allowed and the resend cool-down.
CREATE TABLE twofactor_challenges (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    ref           TEXT NOT NULL,
    method        TEXT NOT NULL,
    recipient     TEXT NOT NULL DEFAULT '',
    code_hash     TEXT NOT NULL DEFAULT '',
    sent          INTEGER NOT NULL DEFAULT 0,
    sent_at       BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    resend_after  BIGINT NOT NULL,
    attempts_left INTEGER NOT NULL,
    state         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (user_id, purpose, ref)
);

-- +goose Down
DROP TABLE twofactor_challenges;
DROP TABLE twofactor_enrolments;
