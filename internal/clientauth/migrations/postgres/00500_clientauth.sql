-- +goose Up
-- Bearer tokens of the client API. Only SHA-256 hashes are stored. A family
-- is one login: its access and refresh tokens, rotated on every refresh.
CREATE TABLE clientauth_tokens (
    hash        TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX clientauth_tokens_family ON clientauth_tokens (family_id);
CREATE INDEX clientauth_tokens_user ON clientauth_tokens (user_id);

-- +goose Down
DROP TABLE clientauth_tokens;
