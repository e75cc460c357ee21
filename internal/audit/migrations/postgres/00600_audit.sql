-- +goose Up
-- The audit trail: one row per record, hash-chained in seq order (see
-- docs/audit.md for the hash). Rows are only ever inserted. actor, action
-- and subject compare bytewise (COLLATE "C") like on SQLite, so the action
-- prefix search is an index range.
CREATE TABLE audit_entries (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT COLLATE "C" NOT NULL,
    action    TEXT COLLATE "C" NOT NULL,
    subject   TEXT COLLATE "C" NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_entries_subject ON audit_entries (subject, seq);
CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);
CREATE INDEX audit_entries_action ON audit_entries (action, seq);
CREATE INDEX audit_entries_at ON audit_entries (at);

-- The head of the chain: the last record's seq and hash. Every append
-- locks this single row, so appends form one line.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- +goose Down
DROP TABLE audit_head;
DROP TABLE audit_entries;
