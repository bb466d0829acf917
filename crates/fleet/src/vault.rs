//! The token vault: each connection's tokens sealed in the store under a key the database
//! never sees, and refreshed by one worker at a time under the token row's lock.

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use stet_store::Store;
use stet_transport::{OAuthClient, Token, TransportError};
use zeroize::Zeroizing;

use crate::FleetError;

/// The environment variable holding the store key (base64 of 32 bytes).
pub const STORE_KEY_ENV: &str = "STET_STORE_KEY";

/// The key that seals the fleet's tokens: 32 bytes for AES-256-GCM, and its fingerprint
/// (recorded with each sealed token set, so a wrong key is named before anything is tried).
pub struct StoreKey {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl StoreKey {
    /// A key from its base64 text (`where` names its origin in errors).
    pub fn from_base64(text: &str, origin: &str) -> Result<StoreKey, FleetError> {
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| FleetError::BadStoreKey {
                    origin: origin.to_owned(),
                    reason: format!("not base64 ({e})"),
                })?,
        );
        if bytes.len() != 32 {
            return Err(FleetError::BadStoreKey {
                origin: origin.to_owned(),
                reason: format!("{} bytes, where AES-256 needs exactly 32", bytes.len()),
            });
        }
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &[b"stet-store-key\0".as_slice(), &bytes].concat(),
        );
        let id = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| FleetError::BadStoreKey {
            origin: origin.to_owned(),
            reason: "refused by AES-256-GCM".to_owned(),
        })?;
        Ok(StoreKey {
            key: LessSafeKey::new(key),
            id,
        })
    }

    /// The key from `STET_STORE_KEY`, else from the file `key_file` (its base64), else an
    /// error naming both ways. A key file others can read is warned about.
    pub fn load(env_value: Option<&str>, key_file: Option<&Path>) -> Result<StoreKey, FleetError> {
        if let Some(text) = env_value.filter(|t| !t.trim().is_empty()) {
            return StoreKey::from_base64(text, STORE_KEY_ENV);
        }
        if let Some(path) = key_file {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                FleetError::BadStoreKey {
                    origin: path.display().to_string(),
                    reason: format!("cannot read it: {e}"),
                }
            })?);
            warn_if_readable_by_others(path);
            return StoreKey::from_base64(&text, &path.display().to_string());
        }
        Err(FleetError::NoStoreKey)
    }

    /// A new random key, as base64 (for `stet psu key`-style set-ups and tests).
    pub fn generate() -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        // The system generator fails only when the OS has no entropy source at all.
        let _ = SystemRandom::new().fill(bytes.as_mut());
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes.as_ref()))
    }

    /// The key's fingerprint (16 hex digits), stored beside what it seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plain` for `connection`: nonce ‖ ciphertext ‖ tag, the connection id as
    /// associated data (a sealed blob copied to another connection does not open).
    pub fn seal(&self, connection: i64, plain: &[u8]) -> Result<Vec<u8>, FleetError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| FleetError::Crypto("no random numbers for a nonce".to_owned()))?;
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(connection.to_string().as_bytes()),
                &mut data,
            )
            .map_err(|_| FleetError::Crypto("sealing failed".to_owned()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Opens what [`StoreKey::seal`] sealed for `connection`.
    pub fn open(
        &self,
        connection: i64,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, FleetError> {
        let mismatch = || FleetError::KeyMismatch { connection };
        if key_id != self.id || sealed.len() < NONCE_LEN {
            return Err(mismatch());
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| mismatch())?;
        let mut data = Zeroizing::new(data.to_vec());
        let plain_len = self
            .key
            .open_in_place(
                nonce,
                Aad::from(connection.to_string().as_bytes()),
                &mut data,
            )
            .map_err(|_| mismatch())?
            .len();
        data.truncate(plain_len);
        Ok(data)
    }

    /// Seals a token for `connection`: (sealed, key id).
    pub fn seal_token(
        &self,
        connection: i64,
        token: &Token,
    ) -> Result<(Vec<u8>, String), FleetError> {
        let json = Zeroizing::new(
            serde_json::to_vec(token).map_err(|e| FleetError::Crypto(e.to_string()))?,
        );
        Ok((self.seal(connection, &json)?, self.id.clone()))
    }

    /// Opens a sealed token of `connection`.
    pub fn open_token(
        &self,
        connection: i64,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Token, FleetError> {
        let plain = self.open(connection, key_id, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| FleetError::KeyMismatch { connection })
    }
}

/// A key file others can read is a key others have.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "the store key file {} can be read by other users: chmod 600 it",
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// What [`Vault::access_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The stored access token was fresh.
    Stored,
    /// It was refreshed (and the rotated tokens stored) by this call.
    Refreshed,
}

/// The vault: tokens of the store's connections, opened with one key.
#[derive(Debug, Clone)]
pub struct Vault {
    store: Store,
    key: std::sync::Arc<StoreKey>,
    margin: Duration,
}

impl Vault {
    /// A vault over `store`, sealing with `key`. An access token is used while it is good
    /// for at least `margin` (or half its lifetime, when that is shorter).
    pub fn new(store: Store, key: std::sync::Arc<StoreKey>, margin: Duration) -> Self {
        Vault { store, key, margin }
    }

    /// The key.
    pub fn key(&self) -> &StoreKey {
        &self.key
    }

    /// Checks that the key opens every stored token set; the first that does not is named.
    /// Nothing is changed.
    pub async fn check_key(&self) -> Result<usize, FleetError> {
        let sealed = self.store.sealed_tokens().await?;
        for (connection, blob, key_id) in &sealed {
            self.key.open(*connection, key_id, blob)?;
        }
        Ok(sealed.len())
    }

    /// A usable access token of `connection`. The token row is locked (`SELECT … FOR
    /// UPDATE`) while it is read and, if needed, refreshed through `oauth` and written back
    /// rotated: workers asking at once wait for the first, then find its fresh token, so a
    /// refresh token is spent once. A token the bank refused ([`Store::mark_tokens_stale`])
    /// is refreshed even if its expiry says it is fresh.
    pub async fn access_token(
        &self,
        connection: i64,
        oauth: Option<&OAuthClient>,
    ) -> Result<(Token, TokenSource), FleetError> {
        let mut lock = self
            .store
            .lock_tokens(connection)
            .await?
            .ok_or(FleetError::NoTokens { connection })?;
        let token = self
            .key
            .open_token(connection, &lock.key_id, &lock.sealed)?;
        let now = SystemTime::now();
        let lifetime = token
            .expires_at
            .map(|at| Duration::from_secs(at.saturating_sub(token.obtained_at)));
        let margin = lifetime.map_or(self.margin, |l| self.margin.min(l / 2));
        if !lock.stale && token.is_fresh(now, margin) {
            lock.commit().await?;
            return Ok((token, TokenSource::Stored));
        }
        if token.refresh_token.is_none() {
            // Dropping the lock rolls back: nothing changed.
            return Err(FleetError::ConsentRefused {
                connection,
                reason:
                    "the access token expired or was refused, and the bank issued no refresh token"
                        .to_owned(),
            });
        }
        let oauth = oauth.ok_or_else(|| FleetError::Config(format!(
            "connection {connection}: its profile has no token_url or client_id to refresh tokens with"
        )))?;
        let fresh = match oauth.refresh(&token).await {
            Ok(t) => t,
            Err(TransportError::OAuth { error, description }) => {
                return Err(FleetError::ConsentRefused {
                    connection,
                    reason: format!(
                        "the bank refused to refresh the token: {error}{}",
                        description.map(|d| format!(" ({d})")).unwrap_or_default()
                    ),
                });
            }
            Err(other) => {
                return Err(FleetError::Refresh {
                    connection,
                    error: other,
                });
            }
        };
        let (sealed, key_id) = self.key.seal_token(connection, &fresh)?;
        lock.write(&sealed, &key_id).await?;
        lock.commit().await?;
        tracing::info!(connection, "access token refreshed");
        Ok((fresh, TokenSource::Refreshed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StoreKey {
        StoreKey::from_base64(&StoreKey::generate(), "test").unwrap()
    }

    #[test]
    fn sealed_tokens_open_only_with_their_key_and_connection() {
        let k = key();
        let sealed = k.seal(7, b"secret token set").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"), "no clear text");
        assert_eq!(&*k.open(7, k.id(), &sealed).unwrap(), b"secret token set");
        // Another connection's associated data.
        assert!(matches!(
            k.open(8, k.id(), &sealed),
            Err(FleetError::KeyMismatch { connection: 8 })
        ));
        // Another key, even if the fingerprint were forged.
        let other = key();
        assert!(other.open(7, other.id(), &sealed).is_err());
        assert!(other.open(7, k.id(), &sealed).is_err());
        // A flipped bit.
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(k.open(7, k.id(), &bad).is_err());
        // Two seals of the same text differ (random nonces).
        assert_ne!(sealed, k.seal(7, b"secret token set").unwrap());
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(matches!(
            StoreKey::from_base64("c2hvcnQ=", "X"),
            Err(FleetError::BadStoreKey { .. })
        ));
        assert!(matches!(
            StoreKey::from_base64("not base64!", "X"),
            Err(FleetError::BadStoreKey { .. })
        ));
        let err = StoreKey::load(None, None).unwrap_err();
        assert!(err.to_string().contains(STORE_KEY_ENV), "{err}");
        assert!(err.to_string().contains("store_key_file"), "{err}");
    }
}
