//! An on-demand sync asked for (`stet psu sync`) while a worker runs the connection's job is
//! not lost when that run completes: the job keeps the request and the next claim runs it,
//! with the PSU's address. Against the real PostgreSQL.

use std::time::Duration;

use stet_store::{JobCompletion, Location, NewConnection, OpenOptions, Store};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_request_during_a_run_survives_its_completion() {
    let url = stet_testkit::fresh_postgres_database("fleet_on_demand");
    let store = Store::open(&Location::parse(&url).unwrap(), &OpenOptions::default())
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let id = store
        .add_connection(
            &NewConnection {
                profile: "bank".into(),
                name: "alice".into(),
                bank: "sandbox".into(),
                scopes: "aisp".into(),
                consent_valid_until: Some(now + time::Duration::days(90)),
            },
            |_| Ok((vec![0; 40], "test".into())),
        )
        .await
        .unwrap()
        .id;
    store.schedule(true).await.unwrap();
    let lease = Duration::from_secs(60);
    let claimed = store.claim_jobs("w1", lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let job = &claimed[0];
    assert_eq!((job.connection_id, job.kind.as_str()), (id, "scheduled"));

    // The PSU asks for a sync while w1 runs the scheduled one.
    store.enqueue_on_demand(id, "192.0.2.7").await.unwrap();
    let completion = |started_at| JobCompletion {
        outcome: "done".into(),
        next_due: Some(OffsetDateTime::now_utc() + time::Duration::hours(6)),
        retry: false,
        calls: 3,
        transactions: 10,
        error: None,
        started_at,
        kind: "scheduled".into(),
    };
    assert!(
        store
            .complete_job(job, "w1", &completion(now))
            .await
            .unwrap()
    );
    // Still due now, on demand, with the PSU's address: the next claim runs it.
    let next = store.claim_jobs("w2", lease, 10).await.unwrap();
    assert_eq!(next.len(), 1, "the on-demand request was kept");
    assert_eq!(next[0].kind, "on_demand");
    assert_eq!(next[0].psu_ip.as_deref(), Some("192.0.2.7"));

    // Once that run completes with nothing new asked, the job is back to its slots.
    let mut done = completion(OffsetDateTime::now_utc());
    done.kind = "on_demand".into();
    assert!(store.complete_job(&next[0], "w2", &done).await.unwrap());
    assert!(
        store.claim_jobs("w3", lease, 10).await.unwrap().is_empty(),
        "nothing due until the next slot"
    );
    let connection = store.connection(id).await.unwrap().unwrap();
    assert!(connection.due_at.unwrap() > OffsetDateTime::now_utc() + time::Duration::hours(5));
}
