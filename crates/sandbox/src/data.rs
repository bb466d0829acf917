//! Deterministic synthetic data: the test PSU's accounts, transactions and beneficiaries.
//!
//! Everything derives from the seed and the reference date through a small PRNG (splitmix64),
//! so the same seed and date give the same data byte for byte, on every platform.

use rust_decimal::Decimal;
use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};

/// A tiny, portable PRNG (splitmix64): reproducible across platforms and versions.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5eed_57e7_5a4d_b0c5)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One synthetic account.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) id: String,
    /// The id the account was first given (`ACC0001`): its entry references start with it,
    /// and a re-consent derives the new resource id from it.
    pub(crate) base_id: String,
    /// The number of the next entry reference.
    pub(crate) next_entry: usize,
    pub(crate) iban: String,
    pub(crate) name: String,
    pub(crate) product: String,
    /// Booked balance at the reference date.
    pub(crate) booked: Decimal,
    /// Booked balance plus pending transactions.
    pub(crate) expected: Decimal,
    pub(crate) overdraft: Decimal,
    /// The account's currency: EUR, but every fourth account (the 4th, 8th, …) is in USD, as
    /// a French bank's foreign-currency account is.
    pub(crate) currency: &'static str,
    /// Newest first.
    pub(crate) transactions: Vec<Tx>,
}

/// One synthetic transaction.
#[derive(Debug, Clone)]
pub(crate) struct Tx {
    pub(crate) entry_reference: String,
    pub(crate) amount: Decimal,
    pub(crate) credit: bool,
    /// The account's currency.
    pub(crate) currency: &'static str,
    pub(crate) booked: bool,
    pub(crate) label: String,
    pub(crate) transaction_date: OffsetDateTime,
    pub(crate) booking_date: Date,
    /// `transaction_date` and midnight (Paris) of `booking_date` as Unix nanoseconds: what
    /// date-time bounds are compared with, on every request, for every transaction.
    pub(crate) transaction_ns: i128,
    pub(crate) booking_ns: i128,
    /// The transaction as pages list it, in the bank's dialect: written once when the bank
    /// starts (`api::cache_transactions`), copied into every page after.
    pub(crate) json: Option<Box<str>>,
}

/// A trusted beneficiary.
#[derive(Debug, Clone)]
pub(crate) struct TrustedBeneficiary {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) iban: String,
}

/// The whole bank's data for the test PSU.
#[derive(Debug, Clone)]
pub(crate) struct BankData {
    pub(crate) accounts: Vec<Account>,
    pub(crate) beneficiaries: Vec<TrustedBeneficiary>,
    /// The bank's data clock: the date the data ends at. `advance` moves it.
    pub(crate) today: Date,
    /// The seed the data was made from.
    pub(crate) seed: u64,
    /// How many times the clock was advanced, and the PSU consented again.
    pub(crate) advances: u64,
    pub(crate) consents: u64,
}

/// What [`BankData::advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Advanced {
    /// Transactions added.
    pub added: usize,
    /// Pending transactions booked.
    pub booked: usize,
}

const DEBITS: &[&str] = &[
    "CB CARREFOUR MARKET",
    "CB MONOPRIX PARIS 11",
    "CB SNCF INTERNET",
    // Labels as banks write them: accents, typographic signs, a name outside Windows-1252, a
    // label longer than OFX's 32-character NAME, XML's special characters.
    "CB BOULANGERIE DU MARCHÉ",
    "PRLV SEPA ÉLECTRICITÉ DE FRANCE – ÉCHÉANCE N°12",
    "PRLV SEPA FREE MOBILE",
    "CB PIEROGARNIA ŁÓDŹ & CO <PL>",
    "RETRAIT DAB PARIS",
    "CB AMAZON EU SARL",
    "PRLV SEPA LOYER SCI",
    "CB RATP NAVIGO",
    "VIR SEPA EPARGNE",
];
const CREDITS: &[&str] = &[
    "VIR SEPA SALAIRE ACME SAS",
    "VIR SEPA REMBOURSEMENT CPAM",
    "VIR SEPA CAF",
    "VIR INSTANTANE M DUPONT",
    "REMISE CHEQUE",
];
const PRODUCTS: &[(&str, &str)] = &[
    ("Compte courant", "Compte de dépôt"),
    ("Compte joint", "Compte de dépôt joint"),
    ("Compte pro", "Compte professionnel"),
];

/// A French IBAN for `bank` (5 digits), `branch` (5), `account` (11 alphanumerics) with the
/// right RIB key and ISO 13616 check digits.
pub(crate) fn french_iban(bank: u32, branch: u32, account: u64) -> String {
    let account = format!("{account:011}");
    // RIB key: 97 - ((89*bank + 15*branch + 3*account) mod 97).
    let acc: u64 = account.parse().unwrap_or(0);
    let key = 97 - ((89 * bank as u64 + 15 * branch as u64 + 3 * (acc % 97)) % 97);
    let bban = format!("{bank:05}{branch:05}{account}{key:02}");
    let check = 98 - mod97(&format!("{bban}FR00"));
    format!("FR{check:02}{bban}")
}

fn mod97(s: &str) -> u64 {
    let mut rem = 0u64;
    for c in s.chars() {
        let v = match c {
            '0'..='9' => c as u64 - '0' as u64,
            'A'..='Z' => c as u64 - 'A' as u64 + 10,
            _ => 0,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem
}

/// Whether `iban` passes the ISO 13616 check.
#[cfg(test)]
pub(crate) fn iban_is_valid(iban: &str) -> bool {
    iban.len() > 4 && mod97(&format!("{}{}", &iban[4..], &iban[..4])) == 1
}

impl BankData {
    /// `accounts` accounts with `transactions` transactions each, spread over the 13 months
    /// before `today`.
    pub(crate) fn generate(seed: u64, accounts: usize, transactions: usize, today: Date) -> Self {
        Self::generate_for(seed, 1, accounts, transactions, today)
    }

    /// The data of PSU `psu-{psu}` (numbered from 1). PSU 1 is the historical test PSU, byte
    /// for byte; the others draw from a seed of their own, and their accounts are told apart
    /// by construction, not by chance: resource ids `PSU{psu}-ACC0001`, …, and IBANs on
    /// branches 00000 to 00999 (PSU 1's are 01000 and up) whose account number starts with
    /// the PSU's number.
    pub(crate) fn generate_for(
        seed: u64,
        psu: usize,
        accounts: usize,
        transactions: usize,
        today: Date,
    ) -> Self {
        let first = psu <= 1;
        let mut rng = if first {
            Rng::new(seed)
        } else {
            Rng::new(seed ^ (psu as u64).wrapping_mul(0xd1b5_4a32_d192_ed03))
        };
        let paris = UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC);
        let span_days = 395u64; // 13 months
        let mut list = Vec::with_capacity(accounts);
        for a in 0..accounts {
            let (name, product) = *rng.pick(PRODUCTS);
            let (iban, id) = if first {
                let number = 10_000_000_000 + rng.below(89_999_999_999);
                let iban = french_iban(30004, 1000 + (a as u32 % 9000), number);
                (iban, format!("ACC{:04}", a + 1))
            } else {
                // 11 digits: the PSU's number (below 100000) then 6 drawn ones.
                let number = psu as u64 * 1_000_000 + rng.below(1_000_000);
                let iban = french_iban(30004, a as u32 % 1000, number);
                (iban, format!("PSU{psu}-ACC{:04}", a + 1))
            };
            let currency = if a % 4 == 3 { "USD" } else { "EUR" };
            // Transactions: dates first, sorted newest first, then amounts.
            let mut offsets: Vec<(u64, u64)> = (0..transactions)
                .map(|_| (rng.below(span_days), rng.below(86_400)))
                .collect();
            offsets.sort();
            let mut txs = Vec::with_capacity(transactions);
            for (n, (days_ago, secs)) in offsets.iter().enumerate() {
                let credit = rng.below(4) == 0;
                let label = if credit {
                    *rng.pick(CREDITS)
                } else {
                    *rng.pick(DEBITS)
                };
                let cents = if credit {
                    5_000 + rng.below(250_000)
                } else {
                    150 + rng.below(25_000)
                };
                let day = today - Duration::days(*days_ago as i64);
                let at = day.with_time(
                    Time::from_hms(
                        (secs / 3600) as u8,
                        ((secs / 60) % 60) as u8,
                        (secs % 60) as u8,
                    )
                    .unwrap_or(Time::MIDNIGHT),
                );
                // Transactions of the last two days are still pending.
                let booked = *days_ago >= 2;
                let booking_date = day + Duration::days(1);
                let transaction_date = at.assume_offset(paris);
                txs.push(Tx {
                    entry_reference: format!("{id}-{:06}", transactions - n),
                    amount: Decimal::new(cents as i64, 2),
                    credit,
                    currency,
                    booked,
                    label: label.to_owned(),
                    transaction_date,
                    booking_date,
                    transaction_ns: transaction_date.unix_timestamp_nanos(),
                    booking_ns: booking_date
                        .midnight()
                        .assume_offset(paris)
                        .unix_timestamp_nanos(),
                    json: None,
                });
            }
            // The two oldest look alike (same moment, amount and label), as two coffees bought
            // together do: each must stay one transaction in the store and in every export.
            if txs.len() >= 4 {
                let n = txs.len();
                let twin = txs[n - 2].clone();
                txs[n - 1] = Tx {
                    entry_reference: txs[n - 1].entry_reference.clone(),
                    ..twin
                };
            }
            let booked_sum: Decimal = txs
                .iter()
                .filter(|t| t.booked)
                .map(|t| if t.credit { t.amount } else { -t.amount })
                .sum();
            let pending_sum: Decimal = txs
                .iter()
                .filter(|t| !t.booked)
                .map(|t| if t.credit { t.amount } else { -t.amount })
                .sum();
            let opening = Decimal::new(50_000 + rng.below(500_000) as i64, 2);
            let booked = opening + booked_sum;
            list.push(Account {
                base_id: id.clone(),
                next_entry: transactions + 1,
                id,
                iban,
                name: name.to_owned(),
                product: product.to_owned(),
                booked,
                expected: booked + pending_sum,
                overdraft: Decimal::new(50_000 * (1 + rng.below(4) as i64), 2),
                currency,
                transactions: txs,
            });
        }
        let beneficiaries = ["Marie Martin", "SCI Les Tilleuls", "Jean Dupont", "EDF"]
            .iter()
            .enumerate()
            .map(|(i, name)| TrustedBeneficiary {
                id: format!("BEN{:03}", i + 1),
                name: (*name).to_owned(),
                iban: french_iban(20041, 100 + i as u32, 1_000_000 + rng.below(8_999_999)),
            })
            .collect();
        BankData {
            accounts: list,
            beneficiaries,
            today,
            seed,
            advances: 0,
            consents: 0,
        }
    }

    /// Moves the data clock `days` forward: adds `per_account` transactions to each account,
    /// dated in those days (those of the last two days pending), and books every pending
    /// transaction at least two days old as a bank does: a booking date other than the one
    /// expected, the card date appended to the label and a new entry reference, never another
    /// amount. Balances follow. Changed transactions lose their cached text.
    pub(crate) fn advance(&mut self, days: u32, per_account: usize) -> Advanced {
        let paris = UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC);
        self.advances += 1;
        let mut rng = Rng::new(self.seed ^ self.advances.wrapping_mul(0x9e37_79b9));
        let today = self.today + Duration::days(i64::from(days));
        self.today = today;
        let mut done = Advanced {
            added: 0,
            booked: 0,
        };
        for account in &mut self.accounts {
            let mut delta_booked = Decimal::ZERO;
            let mut delta_pending = Decimal::ZERO;
            let signed = |t: &Tx| if t.credit { t.amount } else { -t.amount };
            // Pending transactions two days old or more are booked.
            for t in account.transactions.iter_mut().filter(|t| !t.booked) {
                let day = t.transaction_date.date();
                if (today - day).whole_days() < 2 {
                    continue;
                }
                t.booked = true;
                t.booking_date = day + Duration::days(2);
                t.booking_ns = t
                    .booking_date
                    .midnight()
                    .assume_offset(paris)
                    .unix_timestamp_nanos();
                t.label = format!("{} {:02}/{:02}", t.label, day.day(), u8::from(day.month()));
                t.entry_reference = format!("{}-{:06}", account.base_id, account.next_entry);
                account.next_entry += 1;
                t.json = None;
                delta_booked += signed(t);
                delta_pending -= signed(t);
                done.booked += 1;
            }
            // New transactions in the days that passed, newest first.
            let mut offsets: Vec<(u64, u64)> = (0..per_account)
                .map(|_| (rng.below(u64::from(days.max(1))), rng.below(86_400)))
                .collect();
            offsets.sort();
            let mut added = Vec::with_capacity(per_account);
            for (days_ago, secs) in offsets.iter().rev() {
                let credit = rng.below(4) == 0;
                let label = if credit {
                    *rng.pick(CREDITS)
                } else {
                    *rng.pick(DEBITS)
                };
                let cents = if credit {
                    5_000 + rng.below(250_000)
                } else {
                    150 + rng.below(25_000)
                };
                let day = today - Duration::days(*days_ago as i64);
                let at = day.with_time(
                    Time::from_hms(
                        (secs / 3600) as u8,
                        ((secs / 60) % 60) as u8,
                        (secs % 60) as u8,
                    )
                    .unwrap_or(Time::MIDNIGHT),
                );
                let booked = *days_ago >= 2;
                let booking_date = day + Duration::days(1);
                let transaction_date = at.assume_offset(paris);
                let t = Tx {
                    entry_reference: format!("{}-{:06}", account.base_id, account.next_entry),
                    amount: Decimal::new(cents as i64, 2),
                    credit,
                    currency: account.currency,
                    booked,
                    label: label.to_owned(),
                    transaction_date,
                    booking_date,
                    transaction_ns: transaction_date.unix_timestamp_nanos(),
                    booking_ns: booking_date
                        .midnight()
                        .assume_offset(paris)
                        .unix_timestamp_nanos(),
                    json: None,
                };
                account.next_entry += 1;
                if booked {
                    delta_booked += signed(&t);
                } else {
                    delta_pending += signed(&t);
                }
                added.push(t);
            }
            // `offsets` ascending is oldest last; reversed it is oldest first: put newest first.
            added.reverse();
            done.added += added.len();
            added.append(&mut account.transactions);
            account.transactions = added;
            account.booked += delta_booked;
            account.expected += delta_booked + delta_pending;
        }
        done
    }

    /// The PSU consents again: every account gets a new resource id (same IBAN), as banks
    /// do. Gives `(iban, old id, new id)` per account.
    pub(crate) fn reconsent(&mut self) -> Vec<(String, String, String)> {
        self.consents += 1;
        let generation = self.consents;
        self.accounts
            .iter_mut()
            .map(|a| {
                let new = format!("{}-R{generation}", a.base_id);
                let old = std::mem::replace(&mut a.id, new.clone());
                (a.iban.clone(), old, new)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data() {
        let today = time::macros::date!(2025 - 06 - 15);
        let a = BankData::generate(7, 3, 50, today);
        let b = BankData::generate(7, 3, 50, today);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let c = BankData::generate(8, 3, 50, today);
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
    }

    #[test]
    fn other_psus_have_their_own_valid_accounts() {
        let today = time::macros::date!(2025 - 06 - 15);
        let first = BankData::generate(7, 3, 10, today);
        assert_eq!(
            format!("{first:?}"),
            format!("{:?}", BankData::generate_for(7, 1, 3, 10, today))
        );
        let mut ibans = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for psu in 1..=300 {
            let data = BankData::generate_for(7, psu, 3, 2, today);
            for a in &data.accounts {
                assert!(iban_is_valid(&a.iban), "{}", a.iban);
                assert!(ibans.insert(a.iban.clone()), "IBAN {} twice", a.iban);
                assert!(ids.insert(a.id.clone()), "id {} twice", a.id);
            }
        }
        let again = BankData::generate_for(7, 42, 3, 10, today);
        assert_eq!(
            format!("{again:?}"),
            format!("{:?}", BankData::generate_for(7, 42, 3, 10, today))
        );
        assert_eq!(again.accounts[0].id, "PSU42-ACC0001");
    }

    #[test]
    fn advancing_books_pending_and_adds_without_changing_amounts() {
        let today = time::macros::date!(2025 - 06 - 15);
        let mut data = BankData::generate(3, 2, 40, today);
        // A first day on adds transactions, some of them pending.
        assert_eq!(data.advance(1, 7).added, 14);
        let pending: Vec<(String, Decimal)> = data.accounts[0]
            .transactions
            .iter()
            .filter(|t| !t.booked)
            .map(|t| (t.entry_reference.clone(), t.amount))
            .collect();
        let pending_everywhere: usize = data
            .accounts
            .iter()
            .map(|a| a.transactions.iter().filter(|t| !t.booked).count())
            .sum();
        assert!(
            !pending.is_empty(),
            "the first account has pending transactions"
        );
        let done = data.advance(5, 7);
        assert_eq!(done.added, 14);
        // Five days on, every earlier pending transaction is more than 2 days old: booked.
        assert_eq!(done.booked, pending_everywhere);
        assert_eq!(data.today, today + Duration::days(6));
        for account in &data.accounts {
            assert_eq!(account.transactions.len(), 54);
            let booked: Decimal = account
                .transactions
                .iter()
                .filter(|t| !t.booked)
                .map(|t| if t.credit { t.amount } else { -t.amount })
                .sum();
            assert_eq!(account.expected - account.booked, booked);
            // Entry references stay unique.
            let refs: std::collections::HashSet<&str> = account
                .transactions
                .iter()
                .map(|t| t.entry_reference.as_str())
                .collect();
            assert_eq!(refs.len(), account.transactions.len());
        }
        // Every transaction pending before is booked now, with a new reference and the same
        // amount.
        for (reference, _) in &pending {
            assert!(
                !data.accounts[0]
                    .transactions
                    .iter()
                    .any(|t| &t.entry_reference == reference)
            );
        }
        // Booked with a new label (the card payment's date added, as banks do) and the same
        // amounts.
        let total_before: Decimal = pending.iter().map(|(_, a)| *a).sum();
        let rebooked: Vec<Decimal> = data.accounts[0]
            .transactions
            .iter()
            .filter(|t| t.label.contains('/'))
            .map(|t| t.amount)
            .collect();
        assert_eq!(rebooked.len(), pending.len());
        assert_eq!(rebooked.iter().copied().sum::<Decimal>(), total_before);
        let renamed = data.reconsent();
        assert_eq!(renamed[0].2, "ACC0001-R1");
        assert_eq!(data.accounts[0].id, "ACC0001-R1");
        assert!(
            data.accounts[0].transactions[0]
                .entry_reference
                .starts_with("ACC0001-")
        );
    }

    #[test]
    fn ibans_and_balances_are_consistent() {
        let today = time::macros::date!(2025 - 06 - 15);
        let data = BankData::generate(1, 4, 80, today);
        for account in &data.accounts {
            assert!(iban_is_valid(&account.iban), "{}", account.iban);
            let pending: Decimal = account
                .transactions
                .iter()
                .filter(|t| !t.booked)
                .map(|t| if t.credit { t.amount } else { -t.amount })
                .sum();
            assert_eq!(account.expected - account.booked, pending);
            let oldest = account.transactions.last().unwrap().transaction_date.date();
            assert!(oldest >= today - Duration::days(395));
            assert!(account.transactions.iter().any(|t| t.credit));
            assert!(account.transactions.iter().any(|t| !t.credit));
        }
        for b in &data.beneficiaries {
            assert!(iban_is_valid(&b.iban), "{}", b.iban);
        }
        // A known-good IBAN.
        assert!(iban_is_valid("FR1420041010050500013M02606"));
    }
}
