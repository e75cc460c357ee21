-- +goose Up
-- One row per withdrawal wizard (seed 002). The withdrawal's parameters are
-- stored when it is submitted for a code, so that the code confirms exactly
-- what was shown; withdrawal_id once funding recorded the withdrawal.
CREATE TABLE withdrawwizard_wizards (
    uuid          TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    state         TEXT NOT NULL,
    login         BIGINT NOT NULL DEFAULT 0,
    method_number INTEGER NOT NULL DEFAULT 0,
    method_id     TEXT NOT NULL DEFAULT '',
    currency      TEXT NOT NULL DEFAULT '',
    amount_minor  BIGINT NOT NULL DEFAULT 0,
    details       TEXT NOT NULL DEFAULT '{}',
    withdrawal_id TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE INDEX withdrawwizard_wizards_user ON withdrawwizard_wizards (user_id, created_at);

-- +goose Down
DROP TABLE withdrawwizard_wizards;
