-- +goose Up
-- The notifications of internal/notify: one row per trader e-mail and per
-- CRM webhook, written in the transaction of the status change it reports.
-- The row holds exactly what is sent (the e-mail's subject and text, the
-- webhook's JSON body, byte for byte) and the outcome of the latest attempt;
-- the job that sends it (jobs.id in job_id) carries only the row's id.
-- Instants are BIGINT microseconds since the Unix epoch (UTC).
CREATE TABLE notify_deliveries (
    id           TEXT    PRIMARY KEY,  -- "evt_…" (webhook: the event id the CRM sees) or "eml_…"
    channel      TEXT    NOT NULL CHECK (channel IN ('email', 'webhook')),
    event_type   TEXT    NOT NULL,     -- "deposit.status_changed", or the e-mail's template ("deposit.completed")
    kind         TEXT    NOT NULL,     -- "deposit" or "withdrawal"
    subject_id   TEXT    NOT NULL,     -- the deposit's or withdrawal's id
    user_id      TEXT    NOT NULL,
    from_status  TEXT    NOT NULL,
    to_status    TEXT    NOT NULL,
    seq          INTEGER NOT NULL,     -- webhooks: 1, 2, … per subject; e-mails: 0
    recipient    TEXT    NOT NULL,     -- the e-mail address, or the URL last used (without credentials)
    lang         TEXT    NOT NULL,
    subject      TEXT    NOT NULL,     -- the e-mail's subject; '' for webhooks
    body         TEXT    NOT NULL,
    job_id       TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_status  INTEGER NOT NULL DEFAULT 0, -- the HTTP status of the latest webhook attempt; 0 for none
    last_error   TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX notify_deliveries_subject ON notify_deliveries (subject_id, channel);
CREATE INDEX notify_deliveries_created ON notify_deliveries (created_at, id);
CREATE INDEX notify_deliveries_open ON notify_deliveries (state, created_at) WHERE state <> 'delivered';

-- +goose Down
DROP TABLE notify_deliveries;
