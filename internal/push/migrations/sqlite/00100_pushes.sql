-- +goose Up
CREATE TABLE pushes (
    id                 TEXT PRIMARY KEY,
    owner              TEXT NOT NULL,
    owner_id           TEXT NOT NULL,
    login              BIGINT NOT NULL,
    change_type        TEXT NOT NULL,
    amount             BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    comment            TEXT NOT NULL DEFAULT '',
    external_note      TEXT NOT NULL DEFAULT '',
    source             TEXT NOT NULL DEFAULT '',
    state              TEXT NOT NULL,
    sends              INTEGER NOT NULL DEFAULT 0,
    balance_history_id BIGINT,
    evidence           TEXT NOT NULL DEFAULT '',
    sending_at         BIGINT,
    lookup_after       BIGINT,
    resolved_by        TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX pushes_state ON pushes (state, updated_at);
CREATE INDEX pushes_owner ON pushes (owner, owner_id);

CREATE TABLE push_events (
    push_id    TEXT NOT NULL REFERENCES pushes (id),
    at         BIGINT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX push_events_push ON push_events (push_id, at);

-- +goose Down
DROP TABLE push_events;
DROP TABLE pushes;
