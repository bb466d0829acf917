//! What applying a batch changes, worked out without the database: ids for the listed
//! transactions, which stored row each one is, which booked transaction claims which pending
//! one, and which pending rows expire. The backends read what this needs, call [`plan`], and
//! write what it says, inside one database transaction.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use sha2::{Digest as _, Sha256};
use time::Date;

use crate::id::{IdRecipe, normalise, stable_id};
use crate::model::{AccountBatch, ApplyReport, ObservedTransaction, Status};

/// A listed transaction with its candidate id.
#[derive(Debug)]
pub(crate) struct Candidate<'a> {
    pub(crate) id: String,
    pub(crate) tx: &'a ObservedTransaction,
    pub(crate) sha256: String,
}

/// A stored row, as far as planning needs it.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub(crate) status: Status,
    pub(crate) raw_sha256: String,
}

/// A stored pending row that a booked transaction may claim.
#[derive(Debug, Clone)]
pub(crate) struct PendingRow {
    pub(crate) stable_id: String,
    pub(crate) amount: Decimal,
    pub(crate) currency: String,
    pub(crate) pending_date: Option<Date>,
    pub(crate) label: String,
    pub(crate) counterparty: String,
}

/// The writes a batch needs.
#[derive(Debug, Default)]
pub(crate) struct Plan<'a> {
    /// New rows: (stable id, transaction, sha).
    pub(crate) inserts: Vec<&'a Candidate<'a>>,
    /// Rows whose content changes: (stored stable id, new version).
    pub(crate) updates: Vec<(String, &'a Candidate<'a>)>,
    /// Rows listed again unchanged: last seen moves.
    pub(crate) touches: Vec<String>,
    /// New claims: (observed id, stored stable id).
    pub(crate) claims: Vec<(String, String)>,
    /// Pending rows to mark expired.
    pub(crate) expire: Vec<String>,
    pub(crate) report: ApplyReport,
}

/// Hex SHA-256 of the raw JSON.
pub(crate) fn sha256_hex(text: &str) -> String {
    // Written digit by digit: a `format!` per byte was a visible share of a large sync's CPU.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 15)]));
    }
    hex
}

/// The candidate id of each listed transaction, occurrence counters included.
pub(crate) fn candidates<'a>(batch: &'a AccountBatch, account_key: &str) -> Vec<Candidate<'a>> {
    let policy = batch.policy;
    let mut seen: HashMap<(Option<Date>, Decimal, String, String, String), u32> = HashMap::new();
    batch
        .transactions
        .iter()
        .map(|tx| {
            let by_ref = tx
                .entry_reference
                .as_deref()
                .filter(|r| policy.entry_reference_stable && !r.trim().is_empty());
            // A source that names its transactions itself: its id, as it is.
            let given = tx
                .entry_reference
                .as_deref()
                .and_then(|r| policy.namespace.source_id(r.trim()));
            let id = match (given, by_ref) {
                (Some(id), _) => id.to_owned(),
                (None, Some(reference)) => stable_id(
                    policy.namespace,
                    account_key,
                    &IdRecipe::EntryReference(reference),
                ),
                (None, None) => {
                    let label = tx.label.as_deref().unwrap_or("");
                    let counterparty = tx.counterparty.as_deref().unwrap_or("");
                    let key = (
                        tx.date(),
                        tx.signed_amount().normalize(),
                        tx.currency.clone(),
                        normalise(label),
                        normalise(counterparty),
                    );
                    let n = seen.entry(key).or_insert(0);
                    let occurrence = *n;
                    // A deleted transaction is not listed: it takes no look-alike's place.
                    if tx.status != Status::Deleted {
                        *n += 1;
                    }
                    stable_id(
                        policy.namespace,
                        account_key,
                        &IdRecipe::Fingerprint {
                            date: tx.date(),
                            amount: tx.signed_amount(),
                            currency: &tx.currency,
                            label,
                            counterparty,
                            occurrence,
                        },
                    )
                }
            };
            Candidate {
                id,
                tx,
                sha256: sha256_hex(&tx.raw_json),
            }
        })
        .collect()
}

/// How alike two texts are, for choosing among pending rows: the number of words in common.
fn likeness(a: &str, b: &str) -> usize {
    let words: HashSet<&str> = a.split(' ').filter(|w| !w.is_empty()).collect();
    b.split(' ').filter(|w| words.contains(w)).count()
}

/// Works out the writes. `stored` holds the stored rows among the candidates' ids (and the
/// claimed rows), `claimed` the recorded claims among the candidates' ids, `claim_targets`
/// the stored rows among the candidates' ids that a recorded claim points at, `pending` the
/// account's stored pending rows, `today` the day expiry is counted from.
pub(crate) fn plan<'a>(
    batch: &AccountBatch,
    candidates: &'a [Candidate<'a>],
    stored: &HashMap<String, StoredRow>,
    claimed: &HashMap<String, String>,
    claim_targets: &HashSet<String>,
    pending: &[PendingRow],
    today: Date,
) -> Plan<'a> {
    let mut plan = Plan::default();
    let (deleted, listed): (Vec<&Candidate<'_>>, Vec<&Candidate<'_>>) = candidates
        .iter()
        .partition(|c| c.tx.status == Status::Deleted);
    plan.report.listed = listed.len() as u64;
    let mut targeted: HashSet<String> = HashSet::new();
    let mut unresolved: Vec<&Candidate<'_>> = Vec::new();

    // 1. Listed transactions that are stored rows already, directly or through a claim.
    for c in listed {
        let target = claimed
            .get(&c.id)
            .filter(|s| stored.contains_key(*s))
            .cloned()
            .or_else(|| stored.contains_key(&c.id).then(|| c.id.clone()));
        match target {
            Some(target) => {
                if !targeted.insert(target.clone()) {
                    // Listed twice under one id: counted once.
                    plan.report.unchanged += 1;
                    continue;
                }
                let row = &stored[&target];
                if row.raw_sha256 == c.sha256 && row.status == c.tx.status {
                    plan.report.unchanged += 1;
                    plan.touches.push(target);
                } else {
                    if c.tx.status == Status::Booked && row.status != Status::Booked {
                        plan.report.booked_from_pending += 1;
                    }
                    plan.report.updated += 1;
                    plan.updates.push((target, c));
                }
            }
            None => unresolved.push(c),
        }
    }

    // 2. New booked transactions claim a pending row the listing no longer shows: same
    //    amount and currency, booked on or after the pending date within the window, then
    //    the closest counterparty and label, then the closest date.
    let window = i64::from(batch.policy.claim_window_days);
    let mut free: Vec<&PendingRow> = pending
        .iter()
        .filter(|p| !targeted.contains(&p.stable_id))
        .collect();
    let mut new_ids: HashSet<&str> = HashSet::new();
    for c in unresolved {
        if !new_ids.insert(&c.id) {
            plan.report.unchanged += 1;
            continue;
        }
        if c.tx.status == Status::Booked
            && let Some(booked) = c.tx.booking_date.or(c.tx.date())
        {
            let amount = c.tx.signed_amount();
            let label = normalise(c.tx.label.as_deref().unwrap_or(""));
            let counterparty = normalise(c.tx.counterparty.as_deref().unwrap_or(""));
            let best = free
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    p.amount == amount
                        && p.currency == c.tx.currency
                        && p.pending_date.is_some_and(|d| {
                            let days = (booked - d).whole_days();
                            (0..=window).contains(&days)
                        })
                })
                .max_by_key(|(_, p)| {
                    let days = p
                        .pending_date
                        .map_or(i64::MAX, |d| (booked - d).whole_days());
                    (
                        !counterparty.is_empty() && p.counterparty == counterparty,
                        likeness(&p.label, &label),
                        std::cmp::Reverse(days),
                    )
                })
                .map(|(i, _)| i);
            if let Some(i) = best {
                let row = free.swap_remove(i);
                targeted.insert(row.stable_id.clone());
                plan.claims.push((c.id.clone(), row.stable_id.clone()));
                plan.updates.push((row.stable_id.clone(), c));
                plan.report.updated += 1;
                plan.report.booked_from_pending += 1;
                continue;
            }
        }
        plan.report.new += 1;
        plan.inserts.push(c);
    }

    // 3. Transactions the source says the bank deleted: their stored row is marked so, unless
    //    something listed now is that row (a booked transaction that claimed a deleted pending
    //    one, as Powens replaces a coming transaction by a booked one under a new id) or a
    //    recorded claim points at it. One never stored is nothing to keep.
    for c in deleted {
        // The row it claimed, if it is a booked transaction that claimed a pending one; else
        // its own, unless another transaction claimed that one.
        let target = match claimed.get(&c.id).filter(|s| stored.contains_key(*s)) {
            Some(row) => row.clone(),
            None if claim_targets.contains(&c.id) => continue,
            None => c.id.clone(),
        };
        let Some(row) = stored.get(&target) else {
            continue;
        };
        if !targeted.insert(target.clone()) {
            continue;
        }
        free.retain(|p| p.stable_id != target);
        if row.status == Status::Deleted && row.raw_sha256 == c.sha256 {
            plan.touches.push(target);
        } else {
            plan.report.deleted += 1;
            plan.updates.push((target, c));
        }
    }

    // 4. Pending rows the listing covered but no longer shows, older than the window: expired.
    for p in free {
        let covered = match (batch.date_from, p.pending_date) {
            (None, _) => true,
            (Some(from), Some(d)) => d >= from,
            (Some(_), None) => false,
        };
        let old = p
            .pending_date
            .is_some_and(|d| (today - d).whole_days() > window);
        if covered && old {
            plan.expire.push(p.stable_id.clone());
            plan.report.expired += 1;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::sha256_hex;

    #[test]
    fn sha256_hex_is_the_lower_case_digest() {
        // FIPS 180-2's first example.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
