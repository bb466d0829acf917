//! OAuth2 tokens and where they are kept between runs.
//!
//! A [`TokenStore`] keeps, per configuration profile, a [`TokenSet`]: the tokens obtained for
//! that profile, keyed by what they are for (`aisp` for the PSU's account-access consent,
//! `client_credentials pisp` for a client-credentials token, …). [`FileTokenStore`], the
//! default, writes one JSON file per profile, created 0600 and replaced atomically (a temporary
//! file in the same folder, synced, then renamed over the old one), so a crash mid-write never
//! loses a refresh token. Runs at the same time (a cron job and a person) take turns through
//! [`TokenStore::lock`]: a refresh, a login or a logout holds the lock, reads the file afresh
//! and writes it back, so no run overwrites what another saved or spends a refresh token that
//! another has already exchanged.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// An access token and what comes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The access token.
    pub access_token: Secret,
    /// Always `Bearer` (banks that answer `bearer` are normalized).
    pub token_type: String,
    /// When the access token expires (Unix seconds), when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The refresh token, when one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// The scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When this access token was obtained (Unix seconds).
    pub obtained_at: u64,
    /// When the PSU last authenticated for this consent (Unix seconds): PSD2 asks for a new
    /// strong authentication every 180 days. Kept across refreshes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_at: Option<u64>,
}

impl Token {
    /// Whether the access token is still good for at least `margin`.
    pub fn is_fresh(&self, now: SystemTime, margin: Duration) -> bool {
        match self.expires_at {
            None => true,
            Some(at) => unix(now) + margin.as_secs() < at,
        }
    }

    /// The `Authorization` header value.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.access_token.expose())
    }
}

/// The tokens of one profile, keyed by what they are for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// Tokens by key.
    #[serde(default)]
    pub tokens: BTreeMap<String, Token>,
}

/// Why the token store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The profile name cannot be a file name.
    #[error("profile name `{0}` cannot name a token file: use letters, digits, `-`, `_` and `.`")]
    BadProfileName(String),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a token set.
    #[error("{path} is not a stet token file ({detail}); remove it with `stet auth logout`")]
    Corrupt {
        /// The file.
        path: String,
        /// The parser's message.
        detail: String,
    },
}

/// Where tokens are kept.
pub trait TokenStore: Send + Sync {
    /// The tokens of `profile` (empty when there are none).
    fn load(&self, profile: &str) -> Result<TokenSet, StoreError>;
    /// Replaces the tokens of `profile`.
    fn save(&self, profile: &str, tokens: &TokenSet) -> Result<(), StoreError>;
    /// Forgets the tokens of `profile`; whether there were any.
    fn delete(&self, profile: &str) -> Result<bool, StoreError>;
    /// Keeps other processes from changing `profile`'s tokens until the lock is dropped; it
    /// may wait for them. A store that only one process sees needs none.
    fn lock(&self, profile: &str) -> Result<FileLock, StoreError> {
        let _ = profile;
        Ok(FileLock::none())
    }
}

/// An exclusive advisory lock on a file (`flock` on Unix, `LockFileEx` on Windows), held
/// until dropped: closing the file releases it, also when the process dies.
#[derive(Debug)]
pub struct FileLock {
    _held: Option<std::fs::File>,
}

impl FileLock {
    /// No lock, for stores that only one process sees.
    pub fn none() -> Self {
        FileLock { _held: None }
    }

    /// Opens `path` (created 0600 if missing; its folder must exist) and waits until no other
    /// handle holds a lock on it. The lock file only ever stays empty: the data it guards
    /// lives beside it, replaced by renames that a lock on the data file itself would not
    /// survive.
    pub fn acquire(path: &Path) -> std::io::Result<FileLock> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        file.lock()?;
        Ok(FileLock { _held: Some(file) })
    }
}

/// Tokens in memory only, for tests and one-shot runs.
#[derive(Debug, Default)]
pub struct MemoryTokenStore(Mutex<BTreeMap<String, TokenSet>>);

impl TokenStore for MemoryTokenStore {
    fn load(&self, profile: &str) -> Result<TokenSet, StoreError> {
        Ok(lock(&self.0).get(profile).cloned().unwrap_or_default())
    }
    fn save(&self, profile: &str, tokens: &TokenSet) -> Result<(), StoreError> {
        lock(&self.0).insert(profile.to_owned(), tokens.clone());
        Ok(())
    }
    fn delete(&self, profile: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.0).remove(profile).is_some())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One JSON file per profile in a folder: `<dir>/<profile>.json`, mode 0600, folder 0700.
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    dir: PathBuf,
}

impl FileTokenStore {
    /// A store in `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileTokenStore { dir: dir.into() }
    }

    /// The default folder: the platform's data folder for stet (e.g.
    /// `~/.local/share/stet/tokens` on Linux).
    pub fn default_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "stet").map(|d| d.data_local_dir().join("tokens"))
    }

    /// The file holding `profile`'s tokens.
    pub fn path(&self, profile: &str) -> Result<PathBuf, StoreError> {
        let ok = !profile.is_empty()
            && !profile.starts_with('.')
            && profile
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(StoreError::BadProfileName(profile.to_owned()));
        }
        Ok(self.dir.join(format!("{profile}.json")))
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl TokenStore for FileTokenStore {
    fn load(&self, profile: &str) -> Result<TokenSet, StoreError> {
        let path = self.path(profile)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenSet::default()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        warn_if_readable_by_others(&path);
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }

    fn save(&self, profile: &str, tokens: &TokenSet) -> Result<(), StoreError> {
        let path = self.path(profile)?;
        create_private_dir(&self.dir).map_err(io_err(&self.dir))?;
        let json = zeroize::Zeroizing::new(serde_json::to_vec_pretty(tokens).map_err(|e| {
            StoreError::Corrupt {
                path: path.display().to_string(),
                detail: e.to_string(),
            }
        })?);
        // tempfile creates the file 0600 on Unix; it is renamed over the old one only once its
        // content is on disk.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tokens-")
            .tempfile_in(&self.dir)
            .map_err(io_err(&self.dir))?;
        tmp.write_all(&json).map_err(io_err(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_err(&path))?;
        tmp.persist(&path).map_err(|e| io_err(&path)(e.error))?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// `<dir>/<profile>.json.lock`, beside the tokens.
    fn lock(&self, profile: &str) -> Result<FileLock, StoreError> {
        let mut path = self.path(profile)?.into_os_string();
        path.push(".lock");
        let path = PathBuf::from(path);
        create_private_dir(&self.dir).map_err(io_err(&self.dir))?;
        FileLock::acquire(&path).map_err(io_err(&path))
    }

    fn delete(&self, profile: &str) -> Result<bool, StoreError> {
        let path = self.path(profile)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.dir);
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes a rename durable: sync the folder entry (best effort; not all platforms allow it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Warns (once per load) when a secret file can be read by other users.
pub fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "{} can be read by other users (mode {:o}): run `chmod 600 {}`",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            );
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(access: &str) -> Token {
        Token {
            access_token: Secret::new(access),
            token_type: "Bearer".into(),
            expires_at: Some(2_000_000_000),
            refresh_token: Some(Secret::new("refresh")),
            scopes: vec!["aisp".into()],
            obtained_at: 1_700_000_000,
            authenticated_at: Some(1_700_000_000),
        }
    }

    #[test]
    fn file_store_round_trips_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path().join("tokens"));
        assert_eq!(store.load("bank").unwrap(), TokenSet::default());
        let mut set = TokenSet::default();
        set.tokens.insert("aisp".into(), token("a1"));
        store.save("bank", &set).unwrap();
        assert_eq!(store.load("bank").unwrap(), set);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&store.path("bank").unwrap()), 0o600);
            assert_eq!(mode(&dir.path().join("tokens")), 0o700);
        }
        // Replacing leaves no temporary file behind.
        set.tokens.insert("aisp".into(), token("a2"));
        store.save("bank", &set).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path().join("tokens"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["bank.json"]);
        assert!(store.delete("bank").unwrap());
        assert!(!store.delete("bank").unwrap());
    }

    #[test]
    fn profile_names_cannot_escape_the_folder() {
        let store = FileTokenStore::new("/tmp/x");
        for bad in ["", "../etc/passwd", "a/b", ".hidden", "a b"] {
            assert!(
                matches!(store.path(bad), Err(StoreError::BadProfileName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path());
        std::fs::write(dir.path().join("p.json"), b"{not json").unwrap();
        let err = store.load("p").unwrap_err().to_string();
        assert!(
            err.contains("p.json") && err.contains("stet auth logout"),
            "{err}"
        );
    }

    #[test]
    fn debug_never_shows_tokens() {
        let shown = format!("{:?}", token("canary-access"));
        assert!(
            !shown.contains("canary") && !shown.contains("refresh\""),
            "{shown}"
        );
    }

    #[test]
    fn freshness_has_a_margin() {
        let t = token("x");
        let at = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        assert!(t.is_fresh(at - Duration::from_secs(120), Duration::from_secs(60)));
        assert!(!t.is_fresh(at - Duration::from_secs(30), Duration::from_secs(60)));
    }
}
