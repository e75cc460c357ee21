-- Reconciliation (internal/reconcile): every run, and every difference it
-- found as a case an operator resolves. Instants are BIGINT microseconds
-- since the Unix epoch (UTC).

-- +goose Up
CREATE TABLE reconcile_runs (
    id           TEXT    PRIMARY KEY,
    actor        TEXT    NOT NULL,
    login        BIGINT  NOT NULL DEFAULT 0,  -- 0: every trading account
    window_from  BIGINT  NOT NULL DEFAULT 0,  -- 0: from the beginning
    window_to    BIGINT  NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('clean', 'differences', 'incomplete')),
    accounts     INTEGER NOT NULL,
    pushes       INTEGER NOT NULL,
    payments     INTEGER NOT NULL,
    report_lines INTEGER NOT NULL,
    differences  INTEGER NOT NULL,
    new_cases    INTEGER NOT NULL,
    detail       TEXT    NOT NULL,            -- JSON: providers, notes, skipped, per-account figures
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT  NOT NULL
);
CREATE INDEX reconcile_runs_started ON reconcile_runs (started_at);

CREATE TABLE reconcile_cases (
    id          TEXT    PRIMARY KEY,
    run_id      TEXT    NOT NULL REFERENCES reconcile_runs (id),
    last_run_id TEXT    NOT NULL REFERENCES reconcile_runs (id),
    seen        INTEGER NOT NULL DEFAULT 1,
    kind        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,             -- a trading login or a payment id
    ref         TEXT    NOT NULL DEFAULT '',  -- the push id or the provider's id it is about
    expected    TEXT    NOT NULL,
    actual      TEXT    NOT NULL,
    evidence    TEXT    NOT NULL,             -- JSON: what each side said
    status      TEXT    NOT NULL CHECK (status IN ('open', 'resolved')),
    resolved_by TEXT    NOT NULL DEFAULT '',
    note        TEXT    NOT NULL DEFAULT '',
    opened_at   BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    resolved_at BIGINT
);
-- At most one open case per difference.
CREATE UNIQUE INDEX reconcile_cases_open ON reconcile_cases (kind, subject, ref) WHERE status = 'open';
CREATE INDEX reconcile_cases_status ON reconcile_cases (status, id);
CREATE INDEX reconcile_cases_subject ON reconcile_cases (subject, id);

-- +goose Down
DROP TABLE reconcile_cases;
DROP TABLE reconcile_runs;
