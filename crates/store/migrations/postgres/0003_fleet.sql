-- The fleet (PostgreSQL): many PSUs' connections, their sealed tokens, the job queue the
-- workers claim from, the shared unattended budget, per-bank caps and consent hooks.
-- docs/fleet.md describes every table. Tokens are never stored in clear: `sealed` is
-- nonce ‖ AES-256-GCM ciphertext under a key the database never sees.

-- One PSU's consent at one bank, through one configuration profile.
CREATE TABLE connections (
    id                   BIGSERIAL PRIMARY KEY,
    profile              TEXT NOT NULL,
    name                 TEXT NOT NULL,
    bank                 TEXT NOT NULL,
    scopes               TEXT NOT NULL DEFAULT '',
    -- active | needs_psu | revoked | expired | removed
    state                TEXT NOT NULL DEFAULT 'active',
    consent_valid_until  TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    needs_psu_since      TIMESTAMPTZ,
    last_error           TEXT,
    -- seconds into each 6-hour period at which its unattended syncs are due
    schedule_offset      INTEGER NOT NULL,
    UNIQUE (profile, name)
);

-- The connection's token set (JSON), sealed: nonce (12 bytes) ‖ ciphertext ‖ tag, the
-- connection id as associated data. `key_id` is a fingerprint of the key, never the key.
-- `stale`: the bank refused the access token, so the next use refreshes it first.
CREATE TABLE connection_tokens (
    connection_id  BIGINT PRIMARY KEY REFERENCES connections (id),
    sealed         BYTEA NOT NULL,
    key_id         TEXT NOT NULL,
    stale          BOOLEAN NOT NULL DEFAULT false,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The live job of each connection (at most one). Due when due_at has passed and no lease
-- is running; a worker's lease is renewed while it runs and fences its completion.
CREATE TABLE jobs (
    id             BIGSERIAL PRIMARY KEY,
    connection_id  BIGINT NOT NULL UNIQUE REFERENCES connections (id),
    -- scheduled | on_demand
    kind           TEXT NOT NULL DEFAULT 'scheduled',
    psu_ip         TEXT,
    due_at         TIMESTAMPTZ NOT NULL,
    lease_owner    TEXT,
    lease_until    TIMESTAMPTZ,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT
);
CREATE INDEX jobs_due ON jobs (due_at);

-- Every run of a job: what the workers did, kept for counting and `stet fleet status`.
CREATE TABLE job_runs (
    id             BIGSERIAL PRIMARY KEY,
    connection_id  BIGINT NOT NULL REFERENCES connections (id),
    job_kind       TEXT NOT NULL,
    worker         TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ NOT NULL,
    -- done | failed | later (back-pressure, budget) | stale_token | needs_psu | lost_lease
    outcome        TEXT NOT NULL,
    calls          BIGINT NOT NULL DEFAULT 0,
    transactions   BIGINT NOT NULL DEFAULT 0,
    error          TEXT
);
CREATE INDEX job_runs_by_time ON job_runs (finished_at);

-- The unattended budget of each connection (its consent): the client's ledger as JSON,
-- written before each call is sent, so a worker killed mid-sync loses none of its calls.
CREATE TABLE budget_ledgers (
    connection_id  BIGINT PRIMARY KEY REFERENCES connections (id),
    ledger         TEXT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Calls per second per bank, across all workers: a token bucket updated atomically.
CREATE TABLE bank_rates (
    bank        TEXT PRIMARY KEY,
    tokens      DOUBLE PRECISION NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- Consent events for the hooks; the unique key makes each fire once.
CREATE TABLE hook_events (
    id             BIGSERIAL PRIMARY KEY,
    connection_id  BIGINT NOT NULL REFERENCES connections (id),
    -- expires_soon | expired | revoked | needs_psu
    event          TEXT NOT NULL,
    -- the consent validity the event is about ('-infinity' when unknown)
    valid_until    TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    detail         TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at   TIMESTAMPTZ,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    UNIQUE (connection_id, event, valid_until)
);

-- Which connection's sync wrote an account (NULL: a person's own profile).
ALTER TABLE accounts ADD COLUMN connection_id BIGINT REFERENCES connections (id);

-- The view gains a last column, psu: the connection's name, else the profile's.
CREATE OR REPLACE VIEW stet_transactions AS
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
       t.raw_json::json   AS raw_json,
       COALESCE(c.name, a.profile) AS psu
FROM transactions t
JOIN accounts a ON a.id = t.account_id
LEFT JOIN connections c ON c.id = a.connection_id;
