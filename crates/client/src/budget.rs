//! The unattended-access budget: PSD2 RTS art. 36(5) lets a TPP read an account without the
//! PSU present at most four times a day per account and endpoint. A call without
//! `PSU-IP-Address` is unattended.
//!
//! stet counts those calls itself, per consent, account and endpoint, over a rolling 24 hours,
//! and refuses the fifth before it reaches the bank, saying when the oldest of the four leaves
//! the window. The count lives in a [`BudgetStore`]; [`FileBudgetStore`] keeps it in a small
//! JSON file (0600, replaced atomically, its updates locked against other processes) so that
//! it holds across runs of a command-line tool that is one process per command, including
//! runs at the same time. A rolling window is stricter than a bank's calendar day:
//! stet may refuse a call a bank would allow, never the other way round.
//!
//! A *consent* is the PSU's authorization: the token key (`aisp`) and the time the PSU
//! authorized it, which a refresh keeps and a new login changes. Each page of a list is a call.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use stet_transport::FileLock;

use crate::ClientError;

/// The calls recorded, per consent, account and endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLedger {
    /// One entry per (consent, account, endpoint) with calls in the window.
    #[serde(default)]
    pub entries: Vec<BudgetEntry>,
}

/// The unattended calls of one consent on one account's endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetEntry {
    /// The consent (token key and authorization time).
    pub consent: String,
    /// The account (`-` for endpoints not tied to one: `accounts`, `end-user-identity`, ...).
    pub account: String,
    /// The endpoint (`accounts`, `balances`, `transactions`, ...).
    pub endpoint: String,
    /// When each call was made, in seconds since the Unix epoch, oldest first.
    pub calls: Vec<u64>,
}

/// Where the budget is kept between calls (and runs).
pub trait BudgetStore: Send + Sync + std::fmt::Debug {
    /// The ledger; an empty one when nothing was recorded yet.
    fn load(&self) -> Result<BudgetLedger, ClientError>;
    /// Replaces the ledger.
    fn save(&self, ledger: &BudgetLedger) -> Result<(), ClientError>;
    /// Keeps every other process off the ledger until the lock is dropped, so that a load and
    /// the save that follows count as one step. A store that only one process sees needs none.
    fn lock(&self) -> Result<FileLock, ClientError> {
        Ok(FileLock::none())
    }
}

/// A budget kept in memory, for one process.
#[derive(Debug, Default)]
pub struct MemoryBudgetStore(Mutex<BudgetLedger>);

impl BudgetStore for MemoryBudgetStore {
    fn load(&self) -> Result<BudgetLedger, ClientError> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn save(&self, ledger: &BudgetLedger) -> Result<(), ClientError> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = ledger.clone();
        Ok(())
    }
}

/// A budget kept in a JSON file, created 0600 (its folder 0700) and replaced atomically.
///
/// Put it next to the token store: [`FileBudgetStore::for_profile`] gives
/// `<token dir>/<profile>.budget.json`.
#[derive(Debug, Clone)]
pub struct FileBudgetStore {
    path: PathBuf,
}

impl FileBudgetStore {
    /// A store in the file `path` (created on first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileBudgetStore { path: path.into() }
    }

    /// `<dir>/<profile>.budget.json`: next to `stet_transport::FileTokenStore`'s
    /// `<dir>/<profile>.json`.
    pub fn for_profile(dir: &Path, profile: &str) -> Self {
        FileBudgetStore::new(dir.join(format!("{profile}.budget.json")))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, detail: impl std::fmt::Display) -> ClientError {
        ClientError::BudgetStore {
            path: self.path.display().to_string(),
            detail: detail.to_string(),
        }
    }
}

impl BudgetStore for FileBudgetStore {
    fn load(&self) -> Result<BudgetLedger, ClientError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                self.error(format!(
                    "{e}; delete the file to start counting afresh (the bank still counts)"
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BudgetLedger::default()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn save(&self, ledger: &BudgetLedger) -> Result<(), ClientError> {
        let dir = self.dir()?;
        let json = serde_json::to_vec_pretty(ledger).map_err(|e| self.error(e))?;
        // tempfile creates the file 0600 on Unix; it replaces the old one only once written.
        let mut tmp = tempfile::Builder::new()
            .prefix(".budget-")
            .tempfile_in(&dir)
            .map_err(|e| self.error(e))?;
        tmp.write_all(&json).map_err(|e| self.error(e))?;
        tmp.as_file().sync_all().map_err(|e| self.error(e))?;
        tmp.persist(&self.path).map_err(|e| self.error(e.error))?;
        Ok(())
    }

    /// An exclusive lock on `<file>.lock`. Two `stet` runs at once (a cron job and a person)
    /// would otherwise both read three calls and both make a fourth: five unattended calls in
    /// a day, which the bank may hold against the TPP. The ledger itself cannot be locked: it
    /// is replaced, not rewritten, on every save.
    fn lock(&self) -> Result<FileLock, ClientError> {
        self.dir()?;
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        FileLock::acquire(Path::new(&name)).map_err(|e| self.error(format!("cannot lock it: {e}")))
    }
}

impl FileBudgetStore {
    /// The ledger's folder, created 0700 if missing.
    fn dir(&self) -> Result<PathBuf, ClientError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|e| self.error(e))?;
        Ok(dir)
    }
}

/// The counter: a [`BudgetStore`] with the rule (`limit` calls per `window`), and locks so
/// that concurrent calls, of one process or of several, count one by one.
#[derive(Debug, Clone)]
pub struct UnattendedBudget {
    store: Arc<dyn BudgetStore>,
    limit: u32,
    window: Duration,
    lock: Arc<Mutex<()>>,
}

impl UnattendedBudget {
    /// PSD2's rule: 4 calls per 24 hours, kept in `store`.
    pub fn new(store: Arc<dyn BudgetStore>) -> Self {
        UnattendedBudget {
            store,
            limit: 4,
            window: Duration::from_secs(24 * 3600),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// The calls allowed per window (4).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Records one call at `now` if the budget allows it; otherwise
    /// [`ClientError::BudgetSpent`] with the time the oldest call leaves the window.
    pub fn spend(
        &self,
        consent: &str,
        account: &str,
        endpoint: &str,
        now: SystemTime,
    ) -> Result<(), ClientError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _other_processes = self.store.lock()?;
        let mut ledger = self.store.load()?;
        let now_s = unix(now);
        let horizon = now_s.saturating_sub(self.window.as_secs());
        for e in &mut ledger.entries {
            e.calls.retain(|&t| t > horizon);
        }
        ledger.entries.retain(|e| !e.calls.is_empty());
        let pos = ledger
            .entries
            .iter()
            .position(|e| e.consent == consent && e.account == account && e.endpoint == endpoint);
        let entry = match pos {
            Some(i) => &mut ledger.entries[i],
            None => {
                ledger.entries.push(BudgetEntry {
                    consent: consent.to_owned(),
                    account: account.to_owned(),
                    endpoint: endpoint.to_owned(),
                    calls: Vec::new(),
                });
                let last = ledger.entries.len() - 1;
                &mut ledger.entries[last]
            }
        };
        if entry.calls.len() >= self.limit as usize {
            let oldest = entry.calls.iter().copied().min().unwrap_or(now_s);
            return Err(ClientError::BudgetSpent {
                account: account.to_owned(),
                endpoint: endpoint.to_owned(),
                limit: self.limit,
                resets_at: to_offset(oldest + self.window.as_secs()),
                by_bank: false,
            });
        }
        entry.calls.push(now_s);
        self.store.save(&ledger)
    }

    /// How many unattended calls are left now for this consent, account and endpoint.
    pub fn remaining(
        &self,
        consent: &str,
        account: &str,
        endpoint: &str,
        now: SystemTime,
    ) -> Result<u32, ClientError> {
        let ledger = self.store.load()?;
        let horizon = unix(now).saturating_sub(self.window.as_secs());
        let used = ledger
            .entries
            .iter()
            .filter(|e| e.consent == consent && e.account == account && e.endpoint == endpoint)
            .flat_map(|e| e.calls.iter())
            .filter(|&&t| t > horizon)
            .count() as u32;
        Ok(self.limit.saturating_sub(used))
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) fn to_offset(secs: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `2025-06-15 14:03:00 UTC`.
pub(crate) fn format_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_calls_then_refused_until_the_oldest_leaves_the_window() {
        let budget = UnattendedBudget::new(Arc::new(MemoryBudgetStore::default()));
        let t0 = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
        for i in 0..4 {
            budget
                .spend(
                    "aisp@1",
                    "A1",
                    "transactions",
                    t0 + Duration::from_secs(i * 60),
                )
                .unwrap();
        }
        let err = budget
            .spend(
                "aisp@1",
                "A1",
                "transactions",
                t0 + Duration::from_secs(3600),
            )
            .unwrap_err();
        match &err {
            ClientError::BudgetSpent { resets_at, .. } => {
                assert_eq!(resets_at.unix_timestamp(), 1_750_000_000 + 86_400);
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("resets at 2025-06-16"), "{err}");
        // Other endpoints, accounts and consents have their own budget.
        budget.spend("aisp@1", "A1", "balances", t0).unwrap();
        budget.spend("aisp@1", "A2", "transactions", t0).unwrap();
        budget.spend("aisp@2", "A1", "transactions", t0).unwrap();
        // 24 h after the first call, one call is allowed again.
        let later = t0 + Duration::from_secs(86_400);
        assert_eq!(
            budget
                .remaining("aisp@1", "A1", "transactions", later)
                .unwrap(),
            1
        );
        budget.spend("aisp@1", "A1", "transactions", later).unwrap();
        assert!(budget.spend("aisp@1", "A1", "transactions", later).is_err());
    }

    #[test]
    fn counters_over_one_file_never_allow_a_fifth_call() {
        // Each thread has its own counter over the same file, as separate `stet` runs would:
        // only the file lock keeps them from reading the same count.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens").join("bank.budget.json");
        let now = SystemTime::now();
        let start = Arc::new(std::sync::Barrier::new(16));
        let runs: Vec<_> = (0..16)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    let budget = UnattendedBudget::new(Arc::new(FileBudgetStore::new(path)));
                    start.wait();
                    budget.spend("aisp@1", "A1", "transactions", now).is_ok()
                })
            })
            .collect();
        let allowed = runs
            .into_iter()
            .map(|r| r.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(
            allowed, 4,
            "exactly four unattended calls, whatever the interleaving"
        );
        let ledger = FileBudgetStore::new(&path).load().unwrap();
        assert_eq!(ledger.entries.len(), 1);
        assert_eq!(
            ledger.entries[0].calls.len(),
            4,
            "every allowed call is recorded"
        );
    }

    #[test]
    fn the_file_store_persists_privately() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileBudgetStore::for_profile(&dir.path().join("tokens"), "bank");
        let now = SystemTime::now();
        UnattendedBudget::new(Arc::new(store.clone()))
            .spend("aisp@1", "A1", "balances", now)
            .unwrap();
        // A new process: a new counter over the same file.
        let again = UnattendedBudget::new(Arc::new(store.clone()));
        assert_eq!(again.remaining("aisp@1", "A1", "balances", now).unwrap(), 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(store.path(), b"{not json").unwrap();
        // The lock file beside the ledger is private too.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let lock = dir.path().join("tokens").join("bank.budget.json.lock");
            let mode = std::fs::metadata(lock).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = again.spend("aisp@1", "A1", "balances", now).unwrap_err();
        assert!(matches!(err, ClientError::BudgetStore { .. }), "{err}");
    }
}
