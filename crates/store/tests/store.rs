//! The store's behaviour, the same suite against SQLite and against a real PostgreSQL
//! server (`stet_testkit::fresh_postgres_database`: without one the PostgreSQL half fails and
//! says how to start one).

#![allow(missing_docs)]

use std::collections::BTreeMap;

use futures_util::TryStreamExt as _;
use stet_store::*;
use time::macros::date;

/// A store for a test, and what keeps it alive.
struct TestStore {
    store: Store,
    location: Location,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("sub").join("stet.db"));
    TestStore {
        store: Store::open(&location, &OpenOptions::default())
            .await
            .unwrap(),
        location,
        _dir: Some(dir),
    }
}

async fn postgres() -> TestStore {
    let location = Location::parse(&stet_testkit::fresh_postgres_database("store")).unwrap();
    TestStore {
        store: Store::open(&location, &OpenOptions::default())
            .await
            .unwrap(),
        location,
        _dir: None,
    }
}

/// Runs the test body `$name` against both databases.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::sqlite().await).await } )* }
        mod on_postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::postgres().await).await } )* }
    };
}

both!(
    a_batch_applied_twice_is_stored_once,
    look_alikes_stay_two_and_ids_are_stable,
    a_booked_transaction_claims_its_pending_one,
    claims_follow_their_rules,
    a_pending_transaction_not_listed_again_expires,
    a_reconsent_adds_no_account_and_no_transaction,
    syncs_at_the_same_time_store_one_copy,
    a_newer_schema_is_refused,
    a_lock_held_too_long_says_so_and_writes_nothing,
    the_view_has_the_documented_columns,
    source_ids_are_kept_as_given,
    deleted_transactions_are_marked_never_removed,
);

const IBAN: &str = "FR7630004000031234567890143";

fn tx(
    status: Status,
    date: time::Date,
    amount: &str,
    label: &str,
    reference: &str,
) -> ObservedTransaction {
    let debit = amount.starts_with('-');
    let amount = amount.trim_start_matches('-');
    let raw = format!(
        r#"{{"entryReference":"{reference}","status":"{}","transactionAmount":{{"amount":"{amount}","currency":"EUR"}},"remittanceInformation":{{"unstructured":["{label}"]}}}}"#,
        status.code()
    );
    ObservedTransaction {
        status,
        booking_date: Some(date),
        value_date: Some(date),
        transaction_date: Some(date),
        amount: amount.parse().unwrap(),
        currency: "EUR".into(),
        credit_debit: if debit {
            CreditDebit::Debit
        } else {
            CreditDebit::Credit
        },
        label: Some(label.into()),
        counterparty: None,
        entry_reference: Some(reference.into()),
        raw_json: raw,
    }
}

fn batch(
    resource_id: &str,
    stable_refs: bool,
    transactions: Vec<ObservedTransaction>,
) -> AccountBatch {
    AccountBatch {
        profile: "bank".into(),
        bank: "sandbox".into(),
        account: ObservedAccount {
            iban: Some(IBAN.into()),
            resource_id: resource_id.into(),
            name: Some("Compte courant".into()),
            currency: Some("EUR".into()),
        },
        balances: vec![ObservedBalance {
            balance_type: "CLBD".into(),
            amount: "1224.56".parse().unwrap(),
            currency: "EUR".into(),
            reference_date: Some(date!(2026 - 01 - 10)),
            name: None,
            raw_json: r#"{"balanceType":"CLBD"}"#.into(),
        }],
        transactions,
        date_from: None,
        policy: IdPolicy {
            entry_reference_stable: stable_refs,
            ..IdPolicy::default()
        },
        calls: 2,
        connection_id: None,
    }
}

async fn rows(store: &Store) -> Vec<TransactionRow> {
    store
        .transactions(&HistoryFilter::default())
        .try_collect()
        .await
        .unwrap()
}

/// Stable id → (status, label, amount): what the store holds, without times.
async fn content(store: &Store) -> BTreeMap<String, (String, Option<String>, String)> {
    rows(store)
        .await
        .into_iter()
        .map(|r| (r.stable_id, (r.status, r.label, r.amount.to_string())))
        .collect()
}

fn three() -> Vec<ObservedTransaction> {
    vec![
        tx(
            Status::Booked,
            date!(2026 - 01 - 05),
            "-42.10",
            "CB MONOPRIX",
            "R1",
        ),
        tx(
            Status::Booked,
            date!(2026 - 01 - 06),
            "2500.00",
            "VIR SALAIRE",
            "R2",
        ),
        tx(
            Status::Pending,
            date!(2026 - 01 - 09),
            "-3.50",
            "CB CAFE",
            "R3",
        ),
    ]
}

async fn a_batch_applied_twice_is_stored_once(t: TestStore) {
    let s = &t.store;
    let run = s.begin_run("bank", "test").await.unwrap();
    let first = s.apply(&run, &batch("ACC1", true, three())).await.unwrap();
    assert_eq!((first.listed, first.new, first.updated), (3, 3, 0));
    let second = s.apply(&run, &batch("ACC1", true, three())).await.unwrap();
    assert_eq!((second.new, second.updated, second.unchanged), (0, 0, 3));
    let rows = rows(s).await;
    assert_eq!(rows.len(), 3);
    let salary = rows
        .iter()
        .find(|r| r.label.as_deref() == Some("VIR SALAIRE"))
        .unwrap();
    // Exact decimals, signed, and the bank's JSON as received.
    assert_eq!(salary.amount.to_string(), "2500.00");
    let groceries = rows
        .iter()
        .find(|r| r.entry_reference.as_deref() == Some("R1"))
        .unwrap();
    assert_eq!(groceries.amount.to_string(), "-42.10");
    assert_eq!(groceries.credit_debit, "DBIT");
    assert_eq!(groceries.raw_json, three()[0].raw_json);
    assert_eq!(groceries.iban.as_deref(), Some(IBAN));
    assert!(
        rows.iter()
            .all(|r| r.stable_id.len() == 35 && r.stable_id.starts_with("s1-"))
    );
    s.finish_run(
        &run,
        &RunOutcome {
            outcome: "ok",
            calls: 4,
            error: None,
        },
    )
    .await
    .unwrap();
    let info = s.info().await.unwrap();
    assert_eq!(
        (
            info.accounts,
            info.booked,
            info.pending,
            info.balance_snapshots,
            info.sync_runs
        ),
        (1, 2, 1, 2, 1)
    );
    assert_eq!(info.schema_version, known_schema_version());
    assert!(info.account_list[0].last_sync.is_some());
    // Filters.
    let pending: Vec<TransactionRow> = s
        .transactions(&HistoryFilter {
            statuses: vec![Status::Pending],
            ..HistoryFilter::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    let january_6: Vec<TransactionRow> = s
        .transactions(&HistoryFilter {
            account: Some(IBAN.into()),
            from: Some(date!(2026 - 01 - 06)),
            to: Some(date!(2026 - 01 - 07)),
            ..HistoryFilter::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(january_6.len(), 1);
    assert_eq!(january_6[0].label.as_deref(), Some("VIR SALAIRE"));
}

async fn look_alikes_stay_two_and_ids_are_stable(t: TestStore) {
    let s = &t.store;
    let run = s.begin_run("bank", "test").await.unwrap();
    let coffee = || {
        tx(
            Status::Booked,
            date!(2026 - 01 - 05),
            "-2.40",
            "CB CAFE",
            "",
        )
    };
    let mut listing = vec![coffee(), coffee()];
    let r = s
        .apply(&run, &batch("ACC1", false, listing.clone()))
        .await
        .unwrap();
    assert_eq!(
        r.new, 2,
        "two identical coffees the same day are two transactions"
    );
    let ids: Vec<String> = content(s).await.into_keys().collect();
    // Listed again, with a new transaction beside them: the same two ids, one more row.
    listing.insert(
        0,
        tx(
            Status::Booked,
            date!(2026 - 01 - 06),
            "-9.99",
            "CB LIVRE",
            "",
        ),
    );
    let r = s.apply(&run, &batch("ACC1", false, listing)).await.unwrap();
    assert_eq!((r.new, r.unchanged), (1, 2));
    let after = content(s).await;
    assert_eq!(after.len(), 3);
    assert!(ids.iter().all(|id| after.contains_key(id)));
}

async fn a_booked_transaction_claims_its_pending_one(t: TestStore) {
    let s = &t.store;
    let run = s.begin_run("bank", "test").await.unwrap();
    for stable_refs in [true, false] {
        let resource = if stable_refs { "ACC1" } else { "ACC2" };
        let mut b = batch(
            resource,
            stable_refs,
            vec![tx(
                Status::Pending,
                date!(2026 - 01 - 09),
                "-3.50",
                "CB CAFE",
                "P1",
            )],
        );
        b.account.iban = Some(if stable_refs {
            IBAN.into()
        } else {
            "FR1420041010050500013M02606".into()
        });
        s.apply(&run, &b).await.unwrap();
        let pending_id = rows(s)
            .await
            .into_iter()
            .find(|r| r.status == "PDNG")
            .unwrap()
            .stable_id;

        // Booked two days later under another reference and label, same amount; an unrelated
        // booked transaction of another amount beside it.
        b.transactions = vec![
            tx(
                Status::Booked,
                date!(2026 - 01 - 11),
                "-3.50",
                "CB CAFE 09/01",
                "B7",
            ),
            tx(
                Status::Booked,
                date!(2026 - 01 - 11),
                "-12.00",
                "CB KIOSQUE",
                "B8",
            ),
        ];
        let r = s.apply(&run, &b).await.unwrap();
        assert_eq!((r.booked_from_pending, r.new), (1, 1), "{r:?}");
        let all = rows(s).await;
        let mine: Vec<&TransactionRow> = all.iter().filter(|r| r.iban == b.account.iban).collect();
        assert_eq!(mine.len(), 2, "the pair is one row");
        let claimed = mine
            .iter()
            .find(|r| r.stable_id == pending_id)
            .expect("the pending row keeps its id");
        assert_eq!(claimed.status, "BOOK");
        assert_eq!(claimed.label.as_deref(), Some("CB CAFE 09/01"));
        assert_eq!(claimed.entry_reference.as_deref(), Some("B7"));
        assert_eq!(claimed.booking_date, Some(date!(2026 - 01 - 11)));
        // Listed again: the claim leads to the same row; nothing new.
        let r = s.apply(&run, &b).await.unwrap();
        assert_eq!(
            (r.new, r.updated, r.booked_from_pending, r.unchanged),
            (0, 0, 0, 2)
        );
    }
}

/// The claim's rules: a booked transaction dated before the pending one, or after the
/// window, claims nothing; two booked ones of the same amount claim at most the one pending
/// row between them; among two pending rows of the same amount, the closer label wins.
async fn claims_follow_their_rules(t: TestStore) {
    let s = &t.store;
    let run = s.begin_run("bank", "test").await.unwrap();
    let pending = vec![
        tx(
            Status::Pending,
            date!(2026 - 01 - 09),
            "-3.50",
            "CB CAFE",
            "P1",
        ),
        tx(
            Status::Pending,
            date!(2026 - 01 - 09),
            "-20.00",
            "CB LIBRAIRIE",
            "P2",
        ),
        tx(
            Status::Pending,
            date!(2026 - 01 - 09),
            "-20.00",
            "CB PHARMACIE",
            "P3",
        ),
        tx(
            Status::Pending,
            date!(2026 - 01 - 02),
            "-9.99",
            "CB CINEMA",
            "P4",
        ),
    ];
    s.apply(&run, &batch("ACC1", true, pending)).await.unwrap();
    let id_of = |all: &[TransactionRow], reference: &str| {
        all.iter()
            .find(|r| r.entry_reference.as_deref() == Some(reference))
            .map(|r| r.stable_id.clone())
    };
    let before = rows(s).await;
    let (p1, p2, p3, p4) = (
        id_of(&before, "P1").unwrap(),
        id_of(&before, "P2").unwrap(),
        id_of(&before, "P3").unwrap(),
        id_of(&before, "P4").unwrap(),
    );
    let booked = vec![
        // Before the pending date: no claim.
        tx(
            Status::Booked,
            date!(2026 - 01 - 08),
            "-3.50",
            "CB CAFE",
            "B1",
        ),
        // Two of the same amount: the first claims P1, the second finds nothing left.
        tx(
            Status::Booked,
            date!(2026 - 01 - 10),
            "-3.50",
            "CB CAFE 09/01",
            "B2",
        ),
        tx(
            Status::Booked,
            date!(2026 - 01 - 10),
            "-3.50",
            "CB CAFE 09/01",
            "B3",
        ),
        // The closer label among two pending rows of the amount: the pharmacy's.
        tx(
            Status::Booked,
            date!(2026 - 01 - 10),
            "-20.00",
            "CB PHARMACIE 09/01",
            "B4",
        ),
        // Past the 10-day window: no claim.
        tx(
            Status::Booked,
            date!(2026 - 01 - 20),
            "-9.99",
            "CB CINEMA",
            "B5",
        ),
    ];
    let r = s.apply(&run, &batch("ACC1", true, booked)).await.unwrap();
    assert_eq!(r.booked_from_pending, 2, "{r:?}");
    let after = rows(s).await;
    let row = |id: &str| after.iter().find(|r| r.stable_id == id).unwrap();
    assert_eq!(row(&p1).entry_reference.as_deref(), Some("B2"));
    assert_eq!(row(&p3).entry_reference.as_deref(), Some("B4"));
    assert_eq!(row(&p3).status, "BOOK");
    // Unclaimed, they stay as they were listed (and, long unlisted, expired).
    for (id, reference) in [(&p2, "P2"), (&p4, "P4")] {
        assert_ne!(row(id).status, "BOOK", "{reference}");
        assert_eq!(row(id).entry_reference.as_deref(), Some(reference));
    }
    // B1, B3 and B5 are rows of their own.
    for reference in ["B1", "B3", "B5"] {
        let id = id_of(&after, reference).unwrap_or_else(|| panic!("{reference} stored"));
        assert!(![&p1, &p2, &p3, &p4].contains(&&id), "{reference}");
    }
    assert_eq!(after.len(), 4 + 3);
}

async fn a_pending_transaction_not_listed_again_expires(t: TestStore) {
    let s = &t.store;
    let run = s.begin_run("bank", "test").await.unwrap();
    let old = time::OffsetDateTime::now_utc().date() - time::Duration::days(20);
    let recent = time::OffsetDateTime::now_utc().date() - time::Duration::days(1);
    s.apply(
        &run,
        &batch(
            "ACC1",
            true,
            vec![
                tx(Status::Pending, old, "-7.00", "CB OLD", "P1"),
                tx(Status::Pending, recent, "-8.00", "CB NEW", "P2"),
            ],
        ),
    )
    .await
    .unwrap();
    let r = s.apply(&run, &batch("ACC1", true, vec![])).await.unwrap();
    assert_eq!(r.expired, 1, "only the one older than the claim window");
    let by_label: BTreeMap<Option<String>, String> = rows(s)
        .await
        .into_iter()
        .map(|r| (r.label, r.status))
        .collect();
    assert_eq!(by_label[&Some("CB OLD".to_owned())], "EXPD");
    assert_eq!(by_label[&Some("CB NEW".to_owned())], "PDNG");
}

async fn a_reconsent_adds_no_account_and_no_transaction(t: TestStore) {
    let s = &t.store;
    let run = s.begin_run("bank", "test").await.unwrap();
    s.apply(&run, &batch("ACC1", true, three())).await.unwrap();
    let before = content(s).await;
    let r = s
        .apply(&run, &batch("ACC1-R1", true, three()))
        .await
        .unwrap();
    assert_eq!((r.new, r.updated), (0, 0));
    assert_eq!(content(s).await, before);
    let info = s.info().await.unwrap();
    assert_eq!(info.accounts, 1);
    assert_eq!(info.account_list[0].resource_id.as_deref(), Some("ACC1-R1"));
    // Found by its new resource id and by its IBAN.
    for account in ["ACC1-R1", IBAN] {
        let n = s
            .transactions(&HistoryFilter {
                account: Some(account.into()),
                ..HistoryFilter::default()
            })
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len();
        assert_eq!(n, 3, "{account}");
    }
}

async fn syncs_at_the_same_time_store_one_copy(t: TestStore) {
    let other = Store::open(&t.location, &OpenOptions::default())
        .await
        .unwrap();
    let run = t.store.begin_run("bank", "test").await.unwrap();
    let mut listing = three();
    for n in 0..300 {
        listing.push(tx(
            Status::Booked,
            date!(2026 - 01 - 02),
            "-1.00",
            "CB PARKING",
            &format!("X{n}"),
        ));
    }
    let (a, b) = (
        batch("ACC1", true, listing.clone()),
        batch("ACC1", true, listing),
    );
    let (one, two) = (t.store.clone(), other.clone());
    let (run1, run2) = (run.clone(), run.clone());
    let h1 = tokio::spawn(async move { one.apply(&run1, &a).await.unwrap() });
    let h2 = tokio::spawn(async move { two.apply(&run2, &b).await.unwrap() });
    let (r1, r2) = (h1.await.unwrap(), h2.await.unwrap());
    assert_eq!(
        r1.new + r2.new,
        303,
        "one of them adds, the other finds them: {r1:?} {r2:?}"
    );
    assert_eq!(rows(&t.store).await.len(), 303);
}

async fn a_newer_schema_is_refused(t: TestStore) {
    let record = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (9999, 'future', TRUE, X'00', 0)";
    match &t.location {
        Location::Sqlite(path) => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            sqlx::query(record).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Location::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let record = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (9999, 'future', TRUE, '\\x00'::bytea, 0)";
            sqlx::query(record).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let err = Store::open(&t.location, &OpenOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 9999, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade stet"), "{err}");
}

async fn a_lock_held_too_long_says_so_and_writes_nothing(t: TestStore) {
    let s = &t.store;
    let run = s.begin_run("bank", "test").await.unwrap();
    s.apply(&run, &batch("ACC1", true, three())).await.unwrap();
    let options = OpenOptions {
        busy_timeout: std::time::Duration::from_millis(300),
        ..OpenOptions::default()
    };
    let impatient = Store::open(&t.location, &options).await.unwrap();
    let mut more = three();
    more.push(tx(
        Status::Booked,
        date!(2026 - 01 - 08),
        "-5.00",
        "CB NEW",
        "R9",
    ));
    let err = match &t.location {
        Location::Sqlite(path) => {
            use sqlx::Connection as _;
            let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut holder)
                .await
                .unwrap();
            let err = impatient
                .apply(&run, &batch("ACC1", true, more))
                .await
                .unwrap_err();
            sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
            err
        }
        Location::Postgres(url) => {
            use sqlx::Connection as _;
            let mut holder = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
            sqlx::query("SELECT id FROM accounts FOR UPDATE")
                .execute(&mut holder)
                .await
                .unwrap();
            let err = impatient
                .apply(&run, &batch("ACC1", true, more))
                .await
                .unwrap_err();
            sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
            err
        }
    };
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(rows(s).await.len(), 3, "nothing of the refused batch");
}

async fn the_view_has_the_documented_columns(t: TestStore) {
    let s = &t.store;
    let run = s.begin_run("bank", "test").await.unwrap();
    s.apply(&run, &batch("ACC1", true, three())).await.unwrap();
    let expected = [
        "profile",
        "iban",
        "account_name",
        "stable_id",
        "status",
        "booking_date",
        "value_date",
        "transaction_date",
        "amount",
        "currency",
        "credit_debit",
        "label",
        "counterparty",
        "entry_reference",
        "first_seen",
        "last_seen",
        "raw_json",
        // Schema 3: whose data it is (a fleet connection's name, else the profile's).
        "psu",
    ];
    use sqlx::{Column as _, Row as _};
    let (columns, amount): (Vec<String>, String) = match &t.location {
        Location::Sqlite(path) => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            let row = sqlx::query("SELECT * FROM stet_transactions WHERE entry_reference = 'R1'")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(row.get::<String, _>("psu"), "bank", "the profile's name");
            (
                row.columns().iter().map(|c| c.name().to_owned()).collect(),
                row.get::<String, _>("amount"),
            )
        }
        Location::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let row = sqlx::query("SELECT *, amount::text AS amount_text, raw_json->>'entryReference' AS r FROM stet_transactions WHERE entry_reference = 'R1'").fetch_one(&pool).await.unwrap();
            assert_eq!(
                row.get::<String, _>("r"),
                "R1",
                "raw_json is json in PostgreSQL"
            );
            assert_eq!(
                row.get::<String, _>("psu"),
                "bank",
                "no connection: the profile's name"
            );
            let mut names: Vec<String> =
                row.columns().iter().map(|c| c.name().to_owned()).collect();
            // The two columns this query added itself, after the view's own.
            assert_eq!(
                names.split_off(names.len().saturating_sub(2)),
                ["amount_text", "r"]
            );
            (names, row.get::<String, _>("amount_text"))
        }
    };
    assert_eq!(columns, expected);
    assert_eq!(amount, "-42.10");
}

/// A batch of a source that names its transactions itself (Powens, `p1-…`), for the account
/// `resource_id`.
fn powens_batch(resource_id: &str, transactions: Vec<ObservedTransaction>) -> AccountBatch {
    AccountBatch {
        policy: IdPolicy {
            namespace: Namespace::Powens1,
            entry_reference_stable: true,
            claim_window_days: 10,
        },
        ..batch(resource_id, false, transactions)
    }
}

/// A source that names its transactions itself (Powens, `p1-…`): the ids are kept as given,
/// a coming transaction booked under the same id is one row, and one booked under a new id
/// claims the coming one.
async fn source_ids_are_kept_as_given(t: TestStore) {
    let s = &t.store;
    let powens = |transactions| powens_batch("p1-3f0c9a12-a7", transactions);
    let run = s.begin_run("powens", "test").await.unwrap();
    let first = vec![
        tx(
            Status::Booked,
            date!(2026 - 01 - 05),
            "-42.10",
            "CB MONOPRIX",
            "p1-3f0c9a12-t1",
        ),
        tx(
            Status::Pending,
            date!(2026 - 01 - 09),
            "-3.50",
            "CB CAFE",
            "p1-3f0c9a12-t2",
        ),
        tx(
            Status::Pending,
            date!(2026 - 01 - 09),
            "-9.90",
            "CB KIOSQUE",
            "p1-3f0c9a12-t3",
        ),
    ];
    s.apply(&run, &powens(first)).await.unwrap();
    let ids: Vec<String> = content(s).await.into_keys().collect();
    assert_eq!(ids, ["p1-3f0c9a12-t1", "p1-3f0c9a12-t2", "p1-3f0c9a12-t3"]);

    // t2 booked under its own id; t3 gone, booked as t4.
    let second = vec![
        tx(
            Status::Booked,
            date!(2026 - 01 - 05),
            "-42.10",
            "CB MONOPRIX",
            "p1-3f0c9a12-t1",
        ),
        tx(
            Status::Booked,
            date!(2026 - 01 - 10),
            "-3.50",
            "CB CAFE 09/01",
            "p1-3f0c9a12-t2",
        ),
        tx(
            Status::Booked,
            date!(2026 - 01 - 11),
            "-9.90",
            "CB KIOSQUE 09/01",
            "p1-3f0c9a12-t4",
        ),
    ];
    let report = s.apply(&run, &powens(second.clone())).await.unwrap();
    assert_eq!(
        (report.new, report.booked_from_pending),
        (0, 2),
        "{report:?}"
    );
    let held = content(s).await;
    assert_eq!(held.len(), 3, "{held:?}");
    assert_eq!(
        held["p1-3f0c9a12-t3"].1.as_deref(),
        Some("CB KIOSQUE 09/01")
    );
    assert!(
        held.values().all(|(status, _, _)| status == "BOOK"),
        "{held:?}"
    );
    // The claim holds on every later sync.
    let again = s.apply(&run, &powens(second)).await.unwrap();
    assert_eq!((again.new, again.updated, again.unchanged), (0, 0, 3));
}

/// A source that says the bank deleted a transaction: its stored row is marked `DELD` and
/// kept; one never stored adds nothing; a pending row a booked transaction claimed stays the
/// booked one when the source then says the pending one was deleted.
async fn deleted_transactions_are_marked_never_removed(t: TestStore) {
    let s = &t.store;
    let powens = |transactions| powens_batch("p1-3f0c9a12-a8", transactions);
    let run = s.begin_run("powens", "test").await.unwrap();
    let first = vec![
        tx(
            Status::Booked,
            date!(2026 - 01 - 05),
            "-42.10",
            "CB MONOPRIX",
            "p1-3f0c9a12-t1",
        ),
        tx(
            Status::Pending,
            date!(2026 - 01 - 09),
            "-9.90",
            "CB KIOSQUE",
            "p1-3f0c9a12-t3",
        ),
        // Deleted before it was ever stored: nothing to keep.
        tx(
            Status::Deleted,
            date!(2026 - 01 - 04),
            "-1.00",
            "CB ERREUR",
            "p1-3f0c9a12-t9",
        ),
    ];
    let report = s.apply(&run, &powens(first)).await.unwrap();
    assert_eq!(
        (report.new, report.deleted, report.listed),
        (2, 0, 2),
        "{report:?}"
    );
    assert_eq!(content(s).await.len(), 2);

    // t1 deleted at the bank; t3 replaced by t4 (booked, a new id) and itself deleted.
    let second = vec![
        tx(
            Status::Deleted,
            date!(2026 - 01 - 05),
            "-42.10",
            "CB MONOPRIX",
            "p1-3f0c9a12-t1",
        ),
        tx(
            Status::Deleted,
            date!(2026 - 01 - 09),
            "-9.90",
            "CB KIOSQUE",
            "p1-3f0c9a12-t3",
        ),
        tx(
            Status::Booked,
            date!(2026 - 01 - 11),
            "-9.90",
            "CB KIOSQUE 09/01",
            "p1-3f0c9a12-t4",
        ),
    ];
    let report = s.apply(&run, &powens(second.clone())).await.unwrap();
    assert_eq!(
        (report.new, report.deleted, report.booked_from_pending),
        (0, 1, 1),
        "{report:?}"
    );
    let held = content(s).await;
    assert_eq!(held.len(), 2, "kept, not removed: {held:?}");
    assert_eq!(held["p1-3f0c9a12-t1"].0, "DELD");
    assert_eq!(
        held["p1-3f0c9a12-t3"].0, "BOOK",
        "the booked one claimed it"
    );
    assert_eq!(
        held["p1-3f0c9a12-t3"].1.as_deref(),
        Some("CB KIOSQUE 09/01")
    );

    // The same again: nothing changes; the claim still shields the claimed row.
    let again = s.apply(&run, &powens(second)).await.unwrap();
    assert_eq!(
        (again.new, again.updated, again.deleted),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(content(s).await, held);
    // The deleted pending one listed without the booked one (out of the window): the
    // recorded claim still shields the row.
    let alone = vec![tx(
        Status::Deleted,
        date!(2026 - 01 - 09),
        "-9.90",
        "CB KIOSQUE",
        "p1-3f0c9a12-t3",
    )];
    let report = s.apply(&run, &powens(alone)).await.unwrap();
    assert_eq!(report.deleted, 0, "{report:?}");
    assert_eq!(content(s).await, held);
}
