-- The export ledger (SQLite): what `stet export --since-last NAME` wrote under each name, so
-- the next export under that name writes only what is new, and a transaction the bank changed
-- after it was exported is reported instead of being written a second time.
--
-- One row per name, account and stable id: the version exported (its fingerprint and, for the
-- warning that shows both versions, its date, amount and label).

CREATE TABLE export_ledger (
    name          TEXT NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    stable_id     TEXT NOT NULL,
    -- the format it was written in (beancount, ofx, …)
    format        TEXT NOT NULL,
    -- SHA-256 of the exported fields: status, dates, amount, currency, label, counterparty
    fingerprint   TEXT NOT NULL,
    status        TEXT NOT NULL,
    booking_date  TEXT,
    amount        TEXT NOT NULL,
    currency      TEXT NOT NULL,
    label         TEXT,
    exported_at   TEXT NOT NULL,
    PRIMARY KEY (name, account_id, stable_id)
);
