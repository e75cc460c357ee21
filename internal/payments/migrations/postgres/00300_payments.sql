-- Payments of internal/payments: one row per deposit or payout at a payment
-- provider, its status history, and every provider event kept verbatim.
-- Instants are BIGINT microseconds since the Unix epoch (UTC). Amounts are
-- BIGINT minor units of the currency named beside them.

-- +goose Up
CREATE TABLE payments (
    id                   TEXT    PRIMARY KEY,
    direction            TEXT    NOT NULL CHECK (direction IN ('deposit', 'withdrawal')),
    method_id            TEXT    NOT NULL,
    method_kind          TEXT    NOT NULL,
    provider             TEXT    NOT NULL,
    provider_ref         TEXT,
    customer_id          TEXT    NOT NULL,
    account_id           TEXT    NOT NULL,
    country              TEXT    NOT NULL DEFAULT '',
    currency             TEXT    NOT NULL,
    gross_minor          BIGINT  NOT NULL,
    fee_minor            BIGINT  NOT NULL,
    fee_paid_by          TEXT    NOT NULL,
    net_minor            BIGINT  NOT NULL,
    account_currency     TEXT    NOT NULL,
    account_minor        BIGINT  NOT NULL,
    fx_mid_rate          TEXT,
    fx_inverted          INTEGER NOT NULL DEFAULT 0,
    fx_spread_bps        INTEGER NOT NULL DEFAULT 0,
    fx_rate              TEXT,
    status               TEXT    NOT NULL,
    reason               TEXT    NOT NULL DEFAULT '',
    message              TEXT    NOT NULL DEFAULT '',
    received_minor       BIGINT,
    received_currency    TEXT,
    next_kind            TEXT    NOT NULL DEFAULT '',
    redirect_url         TEXT    NOT NULL DEFAULT '',
    instructions         TEXT,
    instrument           TEXT,
    destination          TEXT,
    confirmations        INTEGER NOT NULL DEFAULT 0,
    provider_seq         BIGINT  NOT NULL DEFAULT 0,
    customer_email       TEXT    NOT NULL DEFAULT '',
    customer_name        TEXT    NOT NULL DEFAULT '',
    return_url           TEXT    NOT NULL DEFAULT '',
    lang                 TEXT    NOT NULL DEFAULT '',
    request_hash         TEXT    NOT NULL,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    final_at             BIGINT
);
CREATE UNIQUE INDEX payments_provider_ref ON payments (provider, provider_ref);
CREATE INDEX payments_status ON payments (status, updated_at);
CREATE INDEX payments_customer ON payments (customer_id, id);
CREATE INDEX payments_account ON payments (account_id, id);

CREATE TABLE payment_status_history (
    payment_id  TEXT    NOT NULL REFERENCES payments (id),
    seq         INTEGER NOT NULL,
    from_status TEXT    NOT NULL,
    to_status   TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    source      TEXT    NOT NULL,
    event_id    TEXT,
    actor       TEXT    NOT NULL DEFAULT '',
    at          BIGINT  NOT NULL,
    PRIMARY KEY (payment_id, seq)
);

CREATE TABLE payment_events (
    id                TEXT   PRIMARY KEY,
    provider          TEXT   NOT NULL,
    provider_event_id TEXT,
    payment_id        TEXT,
    source            TEXT   NOT NULL,
    body              BYTEA  NOT NULL,
    outcome           TEXT   NOT NULL,
    received_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX payment_events_provider_event ON payment_events (provider, provider_event_id);
CREATE INDEX payment_events_payment ON payment_events (payment_id, id);

CREATE TABLE fx_rates (
    base       TEXT   NOT NULL,
    quote      TEXT   NOT NULL,
    rate       TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (base, quote)
);

-- +goose Down
DROP TABLE fx_rates;
DROP TABLE payment_events;
DROP TABLE payment_status_history;
DROP TABLE payments;
