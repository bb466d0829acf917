//! The typed API against the embedded sandbox bank, over real sockets (mTLS, signatures,
//! OAuth), in both dialects, every link style, with faults on.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use stet_client::models::{Access, AccountIdentification, PaymentInformationStatusCode};
use stet_client::{
    ClientError, ClientOptions, CreditTransfer, FileBudgetStore, MemoryBudgetStore,
    PaymentRequestBuilder, StandingOrder, StetClient, TransactionQuery, funds_confirmation_request,
    payment_status,
};
use stet_sandbox::{Dialect, LinkStyle, SandboxConfig};
use support::{Bank, config, consent, days_ago, present};

const FAULTS: &str = "503:every=9,429:every=13:retry-after=0,drop:every=17";

async fn all_transactions(client: &StetClient, account: &str, q: &TransactionQuery) -> Vec<String> {
    client
        .transactions(account, q)
        .map_ok(|t| t.entry_reference.clone().unwrap())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aisp_operation_in_both_dialects_and_every_link_style() {
    for dialect in [Dialect::V1_5, Dialect::V1_4] {
        for links in [LinkStyle::Url, LinkStyle::Path, LinkStyle::Relative] {
            let what = format!("{dialect:?} {links:?}");
            let bank = Bank::start(config(dialect, links, FAULTS)).await;
            bank.login_aisp(false).await;
            let client = bank.client(present());

            let accounts: Vec<_> = client.accounts().try_collect().await.unwrap();
            assert_eq!(accounts.len(), 3, "{what}");
            let first = accounts[0].resource_id.clone().unwrap();

            let balances = client.balances(&first).await.unwrap();
            assert_eq!(balances.balances.len(), 2, "{what}");

            // Without dateFrom: the last 90 days, every page followed, each entry once, newest
            // first.
            let refs = all_transactions(&client, &first, &TransactionQuery::default()).await;
            assert!(refs.len() > 10, "{what}: more than a page ({})", refs.len());
            let unique: HashSet<_> = refs.iter().collect();
            assert_eq!(unique.len(), refs.len(), "{what}: no duplicates");
            let mut sorted = refs.clone();
            sorted.sort_by(|a, b| b.cmp(a));
            assert_eq!(sorted, refs, "{what}: newest first");

            // The entry-reference cursor, in the dialect's parameter name.
            let cursor = refs[refs.len() / 2].clone();
            let after = all_transactions(
                &client,
                &first,
                &TransactionQuery {
                    after_entry_reference: Some(cursor.clone()),
                    ..TransactionQuery::default()
                },
            )
            .await;
            assert!(
                !after.is_empty() && after.iter().all(|r| *r > cursor),
                "{what}"
            );

            // Pages: one at a time, numbered, linked.
            let pages: Vec<_> = client
                .transaction_pages(&first, &TransactionQuery::default())
                .try_collect()
                .await
                .unwrap();
            assert_eq!(pages.len(), refs.len().div_ceil(10), "{what}");
            assert!(pages.iter().all(|p| p.items.len() <= 10));
            assert!(pages.last().unwrap().next.is_none());

            // A range in the future is 204: an empty list, not an error.
            let none = all_transactions(
                &client,
                &first,
                &TransactionQuery {
                    date_from: Some(days_ago(-10)),
                    date_to: Some(days_ago(-20)),
                    ..TransactionQuery::default()
                },
            )
            .await;
            assert!(none.is_empty(), "{what}");

            let me = client.end_user_identity().await.unwrap();
            assert_eq!(me.identity.unwrap().full_name, "Camille Durand", "{what}");
            let beneficiaries: Vec<_> = client.trusted_beneficiaries().try_collect().await.unwrap();
            assert!(!beneficiaries.is_empty(), "{what}");

            let iban = accounts[0].account_id.as_ref().unwrap().iban.clone();
            let access = Access {
                balances: vec![AccountIdentification {
                    iban,
                    ..AccountIdentification::default()
                }],
                ..Access::default()
            };
            client.put_consents(&access).await.unwrap();

            if dialect == Dialect::V1_5 {
                client.overdrafts(&first).await.unwrap();
                assert_eq!(client.owners(&first).await.unwrap().identities.len(), 1);
            } else {
                assert!(matches!(
                    client.overdrafts(&first).await,
                    Err(ClientError::Unsupported { .. })
                ));
            }

            // An unknown account is the bank's 404, with its message.
            let err = client.balances("NO SUCH/ACCOUNT").await.unwrap_err();
            assert!(err.to_string().contains("404"), "{what}: {err}");
            bank.sandbox.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_history_is_the_same_list_as_one_request() {
    for dialect in [Dialect::V1_5, Dialect::V1_4] {
        let bank = Bank::start(config(dialect, LinkStyle::Relative, FAULTS)).await;
        bank.login_aisp(true).await;
        let whole = bank.client(present());
        let mut capped_profile = bank.profile.clone();
        capped_profile.max_history_days_per_request = Some(30);
        let capped = bank.client_with(capped_profile, present());

        let query = TransactionQuery {
            date_from: Some(days_ago(200)),
            ..TransactionQuery::default()
        };
        let account = "ACC0002";
        let one = all_transactions(&whole, account, &query).await;
        let windowed = all_transactions(&capped, account, &query).await;
        assert!(one.len() > 40, "{}", one.len());
        assert_eq!(windowed, one, "{dialect:?}: same items, same order");
        // 200 days in windows of 30: seven windows, so at least seven requests' worth of
        // pages; the page stream says where each page came from.
        let pages: Vec<_> = capped
            .transaction_pages(account, &query)
            .try_collect()
            .await
            .unwrap();
        let windows: HashSet<_> = pages
            .iter()
            .map(|p| {
                p.url
                    .query_pairs()
                    .find(|(k, _)| k == "dateFrom")
                    .unwrap()
                    .1
                    .into_owned()
            })
            .collect();
        assert!(windows.len() >= 6, "{windows:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_history_without_the_scope_says_to_consent_again() {
    let bank = Bank::start(config(Dialect::V1_5, LinkStyle::Url, "")).await;
    bank.login_aisp(false).await;
    let client = bank.client(present());
    let recent = TransactionQuery {
        date_from: Some(days_ago(60)),
        ..TransactionQuery::default()
    };
    assert!(
        !all_transactions(&client, "ACC0001", &recent)
            .await
            .is_empty()
    );
    let old = TransactionQuery {
        date_from: Some(days_ago(120)),
        ..TransactionQuery::default()
    };
    let err = client
        .transactions("ACC0001", &old)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::ExtendedHistoryConsent { days: 90, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("stet auth login --scope aisp --scope extended_transaction_history"),
        "{text}"
    );
    assert_eq!(err.exit_code(), 77);
    // Once the PSU consents with the scope, the same query works.
    bank.login_aisp(true).await;
    assert!(!all_transactions(&client, "ACC0001", &old).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unattended_budget_is_counted_persisted_and_agrees_with_the_bank() {
    let bank = Bank::start(config(Dialect::V1_5, LinkStyle::Path, "")).await;
    bank.login_aisp(false).await;
    let dir = tempfile::tempdir().unwrap();
    let store = FileBudgetStore::for_profile(dir.path(), "sandbox");
    let unattended = |store: Arc<dyn stet_client::BudgetStore>| ClientOptions {
        budget_store: Some(store),
        ..ClientOptions::default()
    };
    let client = bank.client(unattended(Arc::new(store.clone())));
    for _ in 0..4 {
        client.balances("ACC0001").await.unwrap();
    }
    let started = time::OffsetDateTime::now_utc();
    let err = client.balances("ACC0001").await.unwrap_err();
    match &err {
        ClientError::BudgetSpent {
            by_bank: false,
            resets_at,
            endpoint,
            account,
            ..
        } => {
            assert_eq!(
                (account.as_str(), endpoint.as_str()),
                ("ACC0001", "balances")
            );
            let wait = *resets_at - started;
            assert!(wait > time::Duration::hours(23) && wait <= time::Duration::hours(24));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("resets at"), "{err}");
    assert_eq!(err.exit_code(), 75);
    // Other endpoints and accounts have their own budget.
    client.balances("ACC0002").await.unwrap();
    assert_eq!(
        client
            .transactions("ACC0001", &TransactionQuery::default())
            .take(3)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        3
    );

    // The next run of the CLI (a new client on the same file) still refuses, locally.
    let next_run = bank.client(unattended(Arc::new(store.clone())));
    assert!(matches!(
        next_run.balances("ACC0001").await,
        Err(ClientError::BudgetSpent { by_bank: false, .. })
    ));
    // Without stet's count the fifth call reaches the bank, which refuses it the same way.
    let forgetful = bank.client(unattended(Arc::new(MemoryBudgetStore::default())));
    let err = forgetful.balances("ACC0001").await.unwrap_err();
    assert!(
        matches!(err, ClientError::BudgetSpent { by_bank: true, .. }),
        "{err}"
    );
    // With the PSU present, nothing is counted.
    let attended = next_run.with_psu(present().psu);
    for _ in 0..5 {
        attended.balances("ACC0001").await.unwrap();
    }
}

/// A bank that answers its unattended budget with 403 (as Crédit Agricole does): with a
/// profile that says so, the 403 to a call without the PSU is the bank's budget (back-pressure,
/// exit 75), never a refused consent; with the PSU present a 403 is still the consent's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_refusing_its_budget_with_403_is_back_pressure() {
    let bank = Bank::start(SandboxConfig {
        unattended_limit_status: 403,
        ..config(Dialect::V1_5, LinkStyle::Path, "")
    })
    .await;
    bank.login_aisp(false).await;
    let forgetful = || ClientOptions {
        budget_store: Some(Arc::new(MemoryBudgetStore::default())),
        ..ClientOptions::default()
    };
    let mut profile = bank.profile.clone();
    profile.unattended_limit_status = 403;
    for _ in 0..4 {
        bank.client_with(profile.clone(), forgetful())
            .balances("ACC0001")
            .await
            .unwrap();
    }
    // stet's own count forgotten: the fifth call reaches the bank, which answers 403.
    let err = bank
        .client_with(profile.clone(), forgetful())
        .balances("ACC0001")
        .await
        .unwrap_err();
    match &err {
        ClientError::BudgetSpent {
            by_bank: true,
            account,
            endpoint,
            ..
        } => assert_eq!(
            (account.as_str(), endpoint.as_str()),
            ("ACC0001", "balances")
        ),
        other => panic!("{other}"),
    }
    assert_eq!(err.exit_code(), 75);
    // A profile that expects 429 reads the same 403 as the consent refused: the profile is
    // what tells the two apart.
    let err = bank
        .client(forgetful())
        .balances("ACC0001")
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 77, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_accounts_with_bounded_concurrency() {
    let mut cfg = config(
        Dialect::V1_5,
        LinkStyle::Url,
        "slow:every=1:ms=30,503:every=11",
    );
    cfg.accounts = 6;
    cfg.transactions = 30;
    let bank = Bank::start(cfg).await;
    bank.login_aisp(false).await;
    let client = bank.client(ClientOptions {
        concurrency: 2,
        ..present()
    });
    let accounts: Vec<String> = client
        .accounts()
        .map_ok(|a| a.resource_id.clone().unwrap())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(accounts.len(), 6);

    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (i, m) = (in_flight.clone(), most.clone());
    let results: Vec<_> = client
        .for_each_account(accounts.clone(), move |client, account| {
            let (i, m) = (i.clone(), m.clone());
            async move {
                let now = i.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                let r = client.balances(&account).await;
                i.fetch_sub(1, Ordering::SeqCst);
                r
            }
        })
        .collect()
        .await;
    assert_eq!(most.load(Ordering::SeqCst), 2, "two at a time, not more");
    let order: Vec<_> = results.iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(order, accounts, "results in the order asked");
    assert!(results.iter().all(|(_, r)| r.is_ok()));

    let all = client
        .transactions_of(accounts.clone(), &TransactionQuery::default())
        .await;
    for (account, txs) in all {
        let txs = txs.unwrap();
        let one = all_transactions(&client, &account, &TransactionQuery::default()).await;
        assert_eq!(txs.len(), one.len(), "{account}");
    }
}

fn transfer(amount: &str) -> CreditTransfer {
    CreditTransfer::eur(
        "Marie Martin",
        "FR7630006000011234567890189",
        amount.parse().unwrap(),
        "Facture 42",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_and_funds_confirmation_in_both_dialects() {
    for dialect in [Dialect::V1_5, Dialect::V1_4] {
        let bank = Bank::start(config(
            dialect,
            LinkStyle::Relative,
            "slow:every=4:ms=20,expire-token:after=3",
        ))
        .await;
        let client = bank.client(present());
        let debtor = "FR7630004000031234567890143";
        let mut created = 0;

        // A SEPA credit transfer: create, PSU approves, confirm, wait.
        let request = PaymentRequestBuilder::sepa_credit_transfer("Example TPP")
            .debtor_iban(debtor)
            .transfer(transfer("12.10"))
            .report_urls("https://tpp.example/ok", "https://tpp.example/ko")
            .build(client.bank())
            .unwrap();
        let body = stet_client::models::to_json_string(&request, client_dialect(dialect)).unwrap();
        if dialect == Dialect::V1_4 {
            assert!(body.contains(r#""amount":"12.10""#), "{body}");
        } else {
            assert!(body.contains(r#""amount":12.10"#), "{body}");
        }
        let payment = client.create_payment_request(&request).await.unwrap();
        created += 1;
        let approval = payment.consent_approval.clone().unwrap();
        assert!(approval.as_str().contains(&payment.id));
        let read = client.payment_request(&payment.id).await.unwrap();
        assert_eq!(
            payment_status(&read).0,
            Some(&PaymentInformationStatusCode::Rcvd)
        );
        // Not approved yet: waiting is bounded and says so.
        let err = client
            .wait_for_final_status(
                &payment.id,
                Duration::from_millis(150),
                Duration::from_millis(50),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::PaymentPending { .. }), "{err}");
        bank.login("approval", &["pisp"], Some(&approval)).await;
        let confirmed = client
            .confirm_payment_request(&payment.id, consent("approval"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            payment_status(&confirmed).0,
            Some(&PaymentInformationStatusCode::Actc)
        );
        let done = client
            .wait_for_final_status(
                &payment.id,
                Duration::from_secs(5),
                Duration::from_millis(20),
            )
            .await
            .unwrap();
        assert_eq!(
            payment_status(&done).0,
            Some(&PaymentInformationStatusCode::Acsc)
        );
        if dialect == Dialect::V1_5 {
            let transfers: Vec<_> = client
                .payment_transactions(&payment.id)
                .try_collect()
                .await
                .unwrap();
            assert_eq!(transfers.len(), 1);
        } else {
            let err = client
                .payment_transactions(&payment.id)
                .try_collect::<Vec<_>>()
                .await
                .unwrap_err();
            assert!(matches!(err, ClientError::Unsupported { .. }));
        }

        // Over 5000.00: rejected at confirmation, with the reason.
        let big = PaymentRequestBuilder::instant_transfer("Example TPP")
            .transfer(transfer("3000.00"))
            .transfer(transfer("2000.01"))
            .build(client.bank())
            .unwrap();
        assert_eq!(
            big.payment_type_information.local_instrument.as_deref(),
            Some("INST")
        );
        let big = client.create_payment_request(&big).await.unwrap();
        created += 1;
        bank.login("approval", &["pisp"], big.consent_approval.as_ref())
            .await;
        let err = client
            .confirm_payment_request(&big.id, consent("approval"))
            .await
            .unwrap_err();
        match &err {
            ClientError::PaymentRejected { reason, .. } => {
                assert_eq!(reason.as_deref(), Some("AG01"))
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("AG01"), "{err}");
        let err = client
            .wait_for_final_status(&big.id, Duration::from_secs(2), Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::PaymentRejected { .. }));

        // A standing order, then cancelled.
        let start = time::OffsetDateTime::now_utc() + time::Duration::days(7);
        let order = PaymentRequestBuilder::standing_order(
            "Example TPP",
            StandingOrder {
                start,
                end: Some(start + time::Duration::days(365)),
                frequency: stet_client::models::FrequencyCode::Mnth,
                execution_rule: stet_client::models::ExecutionRule::Fwng,
            },
        )
        .debtor_iban(debtor)
        .transfer(transfer("50.00"))
        .build(client.bank())
        .unwrap();
        let order = client.create_payment_request(&order).await.unwrap();
        created += 1;
        use stet_client::models::StatusReasonInformation as Reason;
        if dialect == Dialect::V1_4 {
            // 1.4's reason codes have no DUPL: refused before anything is sent.
            let err = client
                .cancel_payment_request(&order.id, Reason::Dupl)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("DS02 or FRAD"), "{err}");
        }
        client
            .cancel_payment_request(&order.id, Reason::Ds02)
            .await
            .unwrap();
        let done = client
            .wait_for_final_status(&order.id, Duration::from_secs(2), Duration::from_millis(20))
            .await;
        if dialect == Dialect::V1_4 {
            // 1.4 has no CANC: a cancelled request is rejected, with the PSU's reason.
            match done {
                Err(ClientError::PaymentRejected { status, reason, .. }) => {
                    assert_eq!((status.as_str(), reason.as_deref()), ("RJCT", Some("DS02")))
                }
                other => panic!("{other:?}"),
            }
        } else {
            assert_eq!(
                payment_status(&done.unwrap()).0,
                Some(&PaymentInformationStatusCode::Canc)
            );
        }
        // Faults on, and each payment was created exactly once.
        assert_eq!(bank.sandbox.payment_requests_created(), created);

        // Funds confirmation.
        let yes = client
            .funds_confirmation(&funds_confirmation_request(
                bank_iban(&bank).await,
                "10.00".parse().unwrap(),
                "EUR",
            ))
            .await
            .unwrap();
        assert!(yes.result);
        let no = client
            .funds_confirmation(&funds_confirmation_request(
                bank_iban(&bank).await,
                "99999999.00".parse().unwrap(),
                "EUR",
            ))
            .await
            .unwrap();
        assert!(!no.result);
    }
}

fn client_dialect(d: Dialect) -> stet_client::models::Dialect {
    d
}

/// The IBAN of the PSU's first account.
async fn bank_iban(bank: &Bank) -> String {
    bank.login_aisp(false).await;
    let client = bank.client(present());
    let accounts: Vec<_> = client.accounts().try_collect().await.unwrap();
    accounts[0]
        .account_id
        .as_ref()
        .unwrap()
        .iban
        .clone()
        .unwrap()
}
