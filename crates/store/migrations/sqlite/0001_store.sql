-- stet's store, version 1 (SQLite). Migrations are append-only: later versions add files,
-- never edit this one. docs/store.md describes every table and the stet_transactions view.
--
-- SQLite has no exact decimal type: amounts are kept as decimal text ('-12.30'), dates as
-- ISO text ('2026-01-31'), instants as RFC 3339 text. The view has the same columns as on
-- PostgreSQL.

CREATE TABLE accounts (
    id           TEXT PRIMARY KEY,
    profile      TEXT NOT NULL,
    -- 'iban:FR76...' or, when the bank gives no IBAN, 'bank:BANK:RESOURCE_ID'
    account_key  TEXT NOT NULL,
    iban         TEXT,
    bank         TEXT NOT NULL,
    -- the latest resource id the bank gave (a link, never a key)
    resource_id  TEXT,
    name         TEXT,
    currency     TEXT,
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    UNIQUE (profile, account_key)
);

CREATE TABLE account_links (
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    resource_id  TEXT NOT NULL,
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    PRIMARY KEY (account_id, resource_id)
);

CREATE TABLE sync_runs (
    id           TEXT PRIMARY KEY,
    profile      TEXT NOT NULL,
    source       TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    calls        BIGINT NOT NULL DEFAULT 0,
    -- running | ok | partial | failed
    outcome      TEXT NOT NULL DEFAULT 'running',
    error        TEXT
);

CREATE TABLE account_syncs (
    run_id               TEXT NOT NULL REFERENCES sync_runs (id),
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    finished_at          TEXT NOT NULL,
    date_from            TEXT,
    listed               BIGINT NOT NULL,
    new_rows             BIGINT NOT NULL,
    updated              BIGINT NOT NULL,
    booked_from_pending  BIGINT NOT NULL,
    expired              BIGINT NOT NULL,
    calls                BIGINT NOT NULL,
    PRIMARY KEY (run_id, account_id)
);
CREATE INDEX account_syncs_by_account ON account_syncs (account_id, finished_at);

CREATE TABLE transactions (
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    stable_id        TEXT NOT NULL,
    -- BOOK, PDNG, or EXPD (a pending transaction the bank stopped listing)
    status           TEXT NOT NULL,
    booking_date     TEXT,
    value_date       TEXT,
    transaction_date TEXT,
    -- signed: negative for a debit
    amount           TEXT NOT NULL,
    currency         TEXT NOT NULL,
    credit_debit     TEXT NOT NULL,
    label            TEXT,
    counterparty     TEXT,
    entry_reference  TEXT,
    -- the date a pending transaction is dated at, kept for claims
    pending_date     TEXT,
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    first_run        TEXT NOT NULL,
    last_run         TEXT NOT NULL,
    raw_json         TEXT NOT NULL,
    raw_sha256       TEXT NOT NULL,
    PRIMARY KEY (account_id, stable_id)
);
CREATE INDEX transactions_by_date ON transactions (account_id, booking_date);
CREATE INDEX transactions_pending ON transactions (account_id, status) WHERE status = 'PDNG';

-- Ids a listing gave that resolve to another row: a booked transaction that claimed a
-- pending one. The booked transaction's own id points at the pending row's stable id.
CREATE TABLE transaction_claims (
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    observed_id   TEXT NOT NULL,
    stable_id     TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    claimed_at    TEXT NOT NULL,
    PRIMARY KEY (account_id, observed_id)
);

CREATE TABLE balances (
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    run_id          TEXT NOT NULL REFERENCES sync_runs (id),
    fetched_at      TEXT NOT NULL,
    balance_type    TEXT NOT NULL,
    amount          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    reference_date  TEXT,
    name            TEXT,
    raw_json        TEXT NOT NULL
);
CREATE INDEX balances_by_account ON balances (account_id, fetched_at);

CREATE VIEW stet_transactions AS
SELECT a.profile          AS profile,
       a.iban             AS iban,
       a.name             AS account_name,
       t.stable_id        AS stable_id,
       t.status           AS status,
       t.booking_date     AS booking_date,
       t.value_date       AS value_date,
       t.transaction_date AS transaction_date,
       t.amount           AS amount,
       t.currency         AS currency,
       t.credit_debit     AS credit_debit,
       t.label            AS label,
       t.counterparty     AS counterparty,
       t.entry_reference  AS entry_reference,
       t.first_seen       AS first_seen,
       t.last_seen        AS last_seen,
       t.raw_json         AS raw_json
FROM transactions t
JOIN accounts a ON a.id = t.account_id;
