-- The outbox of internal/jobs. See internal/jobs/doc.go for the state
-- machine. Instants are BIGINT microseconds since the Unix epoch (UTC).
-- due_at is the next instant something happens to the job: for a queued job
-- the time it becomes due (0 = as soon as possible), for a running job the
-- end of its lease.

-- +goose Up
CREATE TABLE jobs (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    dedup_key    TEXT,
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempt      INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    due_at       BIGINT  NOT NULL,
    claim_token  TEXT,
    worker_id    TEXT,
    last_error   TEXT,
    created_at   BIGINT  NOT NULL,
    claimed_at   BIGINT,
    finished_at  BIGINT
);
CREATE UNIQUE INDEX jobs_dedup ON jobs (dedup_key, kind);
CREATE INDEX jobs_due ON jobs (due_at, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_dead_kind ON jobs (kind) WHERE state = 'dead';
CREATE INDEX jobs_done_finished ON jobs (finished_at) WHERE state = 'done';

-- +goose Down
DROP TABLE jobs;
