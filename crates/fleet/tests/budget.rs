//! The store-backed unattended budget against the real PostgreSQL: shared by two counters as
//! two workers would, never a fifth call, and a lost race refused before the call.

use std::sync::Arc;
use std::time::SystemTime;

use stet_client::{BudgetStore as _, ClientError, UnattendedBudget};
use stet_fleet::StoreBudget;
use stet_store::{Location, NewConnection, OpenOptions, Store};

async fn store_with_connection() -> (Store, i64) {
    let url = stet_testkit::fresh_postgres_database("fleet_budget");
    let store = Store::open(&Location::parse(&url).unwrap(), &OpenOptions::default())
        .await
        .unwrap();
    let c = store
        .add_connection(
            &NewConnection {
                profile: "bank".into(),
                name: "alice".into(),
                bank: "sandbox".into(),
                scopes: "aisp".into(),
                consent_valid_until: None,
            },
            |_| Ok((vec![0; 40], "test".into())),
        )
        .await
        .unwrap();
    (store, c.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_counters_share_four_calls_a_day() {
    let (store, id) = store_with_connection().await;
    let handle = tokio::runtime::Handle::current();
    let a = UnattendedBudget::new(Arc::new(
        StoreBudget::new(store.clone(), id, handle.clone()).unwrap(),
    ));
    let b = UnattendedBudget::new(Arc::new(
        StoreBudget::new(store.clone(), id, handle).unwrap(),
    ));
    let now = SystemTime::now();
    for budget in [&a, &b, &a, &b] {
        tokio::task::block_in_place(|| budget.spend("aisp@1", "A1", "transactions", now)).unwrap();
    }
    let fifth = tokio::task::block_in_place(|| b.spend("aisp@1", "A1", "transactions", now));
    assert!(
        matches!(fifth, Err(ClientError::BudgetSpent { .. })),
        "{fifth:?}"
    );
    assert_eq!(
        tokio::task::block_in_place(|| a.remaining("aisp@1", "A1", "transactions", now)).unwrap(),
        0
    );
    // A new worker (a new counter) sees them: they are in the store.
    let handle = tokio::runtime::Handle::current();
    let c = UnattendedBudget::new(Arc::new(
        StoreBudget::new(store.clone(), id, handle).unwrap(),
    ));
    assert_eq!(
        tokio::task::block_in_place(|| c.remaining("aisp@1", "A1", "balances", now)).unwrap(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_over_a_ledger_changed_meanwhile_is_refused() {
    let (store, id) = store_with_connection().await;
    let handle = tokio::runtime::Handle::current();
    let first = StoreBudget::new(store.clone(), id, handle.clone()).unwrap();
    let second = StoreBudget::new(store.clone(), id, handle).unwrap();
    tokio::task::block_in_place(|| {
        let mut one = first.load().unwrap();
        let two = second.load().unwrap();
        one.entries.push(stet_client::BudgetEntry {
            consent: "aisp@1".into(),
            account: "A1".into(),
            endpoint: "transactions".into(),
            calls: vec![1],
        });
        first.save(&one).unwrap();
        let err = second.save(&two).unwrap_err();
        assert!(err.to_string().contains("at the same time"), "{err}");
        assert_eq!(second.load().unwrap(), one, "the first save stands");
    });
}

#[tokio::test(flavor = "current_thread")]
async fn a_single_thread_runtime_is_refused_rather_than_blocking_it() {
    assert!(
        StoreBudget::new(
            // Any store will do: the runtime is refused before the store is used.
            Store::open(
                &Location::parse(&format!("sqlite:{}", tempfile_path())).unwrap(),
                &OpenOptions::default()
            )
            .await
            .unwrap(),
            1,
            tokio::runtime::Handle::current()
        )
        .is_none()
    );
    let _ = std::fs::remove_dir_all(std::path::Path::new(&tempfile_path()).parent().unwrap());
}

fn tempfile_path() -> String {
    let dir = std::env::temp_dir().join(format!("stet-fleet-budget-{}", std::process::id()));
    dir.join("store.db").display().to_string()
}

/// The bank's calls-a-second bucket: a burst, then a wait of about one call's worth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calls_bucket_allows_a_burst_then_says_how_long_to_wait() {
    let (store, _) = store_with_connection().await;
    for _ in 0..3 {
        assert_eq!(
            store.take_bank_call("slow-bank", 0.5, 3.0).await.unwrap(),
            None
        );
    }
    let wait = store.take_bank_call("slow-bank", 0.5, 3.0).await.unwrap();
    let wait = wait.expect("the fourth call waits");
    assert!(
        wait.as_secs_f64() > 1.0 && wait.as_secs_f64() <= 2.0,
        "{wait:?}"
    );
    // Another bank has its own bucket.
    assert_eq!(
        store.take_bank_call("other-bank", 0.5, 1.0).await.unwrap(),
        None
    );
}
