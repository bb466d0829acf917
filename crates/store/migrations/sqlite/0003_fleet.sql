-- The fleet needs PostgreSQL (docs/fleet.md); in SQLite, only what the stet_transactions
-- view shares with it: the psu column, which for a person's own profile is the profile's
-- name. accounts.connection_id exists so both databases take the same account writes; it
-- stays NULL here.

ALTER TABLE accounts ADD COLUMN connection_id INTEGER;

DROP VIEW stet_transactions;
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
       t.raw_json         AS raw_json,
       a.profile          AS psu
FROM transactions t
JOIN accounts a ON a.id = t.account_id;
