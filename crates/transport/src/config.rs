//! The configuration file: named profiles, one per bank (or sandbox) a TPP talks to.
//!
//! ```toml
//! default_profile = "sandbox"
//!
//! [profiles.sandbox]
//! bank = "sandbox"                       # the dialect profile (see `stet banks`)
//! api_base = "https://127.0.0.1:8443/stet/psd2/v1.5"
//! token_url = "https://127.0.0.1:8443/oauth/token"
//! authorize_url = "https://127.0.0.1:8443/oauth/authorize"
//! client_id = "PSDFR-ACPR-12345"
//! redirect_uri = "http://127.0.0.1:8765/callback"
//! qwac_cert = "certs/tpp-qwac.pem"       # relative paths: from this file's folder
//! qwac_key = "certs/tpp-qwac.key"
//! qseal_key = "certs/tpp-qseal.key"
//! qseal_cert = "certs/tpp-qseal.pem"     # optional: lets `stet doctor` check it
//! key_id = "https://tpp.example/certs/qseal.pem"
//! ca_bundle = "certs/ca.pem"             # extra roots, for sandboxes with a private CA
//! ```
//!
//! Keys in a hardware security module are RFC 7512 URIs in place of the key files (see
//! `stet_pkcs11`), with the module in `pkcs11_module` (or `STET_PKCS11_MODULE`, or the URI's
//! `module-path`):
//!
//! ```toml
//! qseal_key = "pkcs11:token=tpp-keys;object=qseal?pin-source=file:/run/secrets/hsm-pin"
//! qwac_key = "pkcs11:token=tpp-keys;object=qwac?pin-source=file:/run/secrets/hsm-pin"
//! pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"
//! ```
//!
//! Registration at the bank (`stet register`) reads `registration_url` (default: the bank
//! profile's registration endpoint on the API's host) and a `[profiles.NAME.registration]`
//! table with what only the TPP knows, in the registration spec's own names (`contacts`,
//! `client_name`, `client_uri`, `logo_uri`, `tos_uri`, `policy_uri`, `client_legal_id`), and
//! writes back what the bank answered (`client_id`, `key_id`, `registration_client_uri`,
//! `status`).
//!
//! Where it is: `--config` or `STET_CONFIG`, otherwise the platform's configuration folder
//! (`~/.config/stet/config.toml` on Linux). Which profile: `--profile` or `STET_PROFILE`, else
//! `default_profile`, else the only one. Any value can be overridden from the environment as
//! `STET_` and the key in capitals (`STET_CLIENT_SECRET`, `STET_API_BASE`, …), which keeps
//! secrets out of the file. An unknown key is an error naming it and the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use crate::oauth::ClientAuth;
use crate::secret::Secret;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No configuration file where one was expected.
    #[error(
        "no configuration file at {path}: create one with `stet init`, or point --config / STET_CONFIG at one"
    )]
    NotFound {
        /// The path looked at.
        path: String,
    },
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for stet.
    #[error("{path}: {detail}")]
    Parse {
        /// The path.
        path: String,
        /// The parser's message (with line and column, and the unknown key when there is one).
        detail: String,
    },
    /// The profile asked for does not exist.
    #[error("no profile `{name}` in {path} (profiles: {known})")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The file.
        path: String,
        /// The profiles there are.
        known: String,
    },
    /// Several profiles and none chosen.
    #[error(
        "{path} has several profiles ({known}): choose one with --profile or STET_PROFILE, or set default_profile"
    )]
    NoProfileChosen {
        /// The file.
        path: String,
        /// The profiles there are.
        known: String,
    },
    /// A required key is absent.
    #[error("profile `{profile}` has no `{key}`: add it to the configuration file (or set STET_{})", key.to_ascii_uppercase())]
    Missing {
        /// The key.
        key: &'static str,
        /// The profile.
        profile: String,
    },
    /// A value is not acceptable.
    #[error("profile `{profile}`, `{key}`: {detail}")]
    Invalid {
        /// The profile.
        profile: String,
        /// The key.
        key: &'static str,
        /// What is wrong and what to do.
        detail: String,
    },
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile used when none is named.
    pub default_profile: Option<String>,
    /// The profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileFile>,
    /// The `[export]` section, read by `stet export` (counter accounts, IBAN → account name).
    #[serde(default)]
    pub export: Option<toml::Table>,
    /// The `[fleet]` section, read by the fleet's commands (`stet worker`, `stet psu`): the
    /// store key file, hooks, per-bank caps (docs/fleet.md).
    #[serde(default)]
    pub fleet: Option<toml::Table>,
}

/// A profile as written in the file (all optional; checked when resolved).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // each key is documented in the module docs and the README
pub struct ProfileFile {
    pub bank: Option<String>,
    pub api_base: Option<String>,
    pub token_url: Option<String>,
    pub authorize_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_auth: Option<ClientAuth>,
    pub redirect_uri: Option<String>,
    pub qwac_cert: Option<PathBuf>,
    pub qwac_key: Option<PathBuf>,
    pub qwac_p12: Option<PathBuf>,
    pub qwac_p12_password_env: Option<String>,
    pub qseal_key: Option<PathBuf>,
    pub qseal_cert: Option<PathBuf>,
    pub qseal_key_passphrase_env: Option<String>,
    pub key_id: Option<String>,
    pub ca_bundle: Option<PathBuf>,
    pub signed_headers: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub psu_ip: Option<String>,
    pub connect_timeout_secs: Option<u64>,
    pub timeout_secs: Option<u64>,
    pub allow_expired_certificate: Option<bool>,
    pub allow_insecure_http: Option<bool>,
    pub provider: Option<String>,
    pub domain: Option<String>,
    pub store: Option<String>,
    pub pkcs11_module: Option<PathBuf>,
    pub registration_url: Option<String>,
    pub registration: Option<RegistrationMetadata>,
}

/// The `registration` table of a profile: what the TPP registers at the bank beyond what its
/// certificates say, in STET registration 1.0.5's field names, and what the bank answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationMetadata {
    /// `contacts`: e-mail addresses of people responsible for the client.
    pub contacts: Option<Vec<String>>,
    /// `client_name`, when it must differ from the QSealC's organisation name (banks that
    /// want it unique).
    pub client_name: Option<String>,
    /// `client_uri`: the TPP's home page.
    pub client_uri: Option<String>,
    /// `logo_uri`.
    pub logo_uri: Option<String>,
    /// `tos_uri`: the terms of service.
    pub tos_uri: Option<String>,
    /// `policy_uri`: the privacy policy.
    pub policy_uri: Option<String>,
    /// `client_legal_id`: the agent's number, when an agent registers for the TPP.
    pub client_legal_id: Option<String>,
    /// `redirect_uris` (default: the profile's `redirect_uri`).
    pub redirect_uris: Option<Vec<String>>,
    /// `scope`: the scopes to register (default: every scope the QSealC's roles allow).
    pub scope: Option<Vec<String>>,
    /// The developer portal's user, for banks that register with HTTP Basic.
    pub portal_user: Option<String>,
    /// The environment variable holding the developer portal's password.
    pub portal_password_env: Option<String>,
    /// Written by `stet register`: where the registration is managed.
    pub registration_client_uri: Option<String>,
    /// Written by `stet register`: `active`, or `pending` while the bank approves by hand.
    pub status: Option<String>,
}

/// A profile with everything resolved: environment applied, paths absolute, URLs parsed.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// The bank dialect profile (`stet banks`).
    pub bank: Option<String>,
    /// The API base URL, e.g. `https://api.bank.example/stet/psd2/v1.5`.
    pub api_base: Url,
    /// The token endpoint.
    pub token_url: Option<Url>,
    /// The authorization endpoint.
    pub authorize_url: Option<Url>,
    /// The client id.
    pub client_id: Option<String>,
    /// The client secret.
    pub client_secret: Option<Secret>,
    /// How the client authenticates to the token endpoint.
    pub client_auth: ClientAuth,
    /// The registered redirect URI.
    pub redirect_uri: Option<Url>,
    /// Where the QWAC comes from.
    pub qwac: QwacSource,
    /// The QSealC private key.
    pub qseal_key: PathBuf,
    /// The QSealC certificate (for `stet doctor`; banks fetch it through the keyId).
    pub qseal_cert: Option<PathBuf>,
    /// The variable holding the QSealC key's passphrase.
    pub qseal_key_passphrase_env: Option<String>,
    /// The keyId.
    pub key_id: String,
    /// Extra CA roots.
    pub ca_bundle: Option<PathBuf>,
    /// Overrides the bank profile's signed header list.
    pub signed_headers: Option<Vec<String>>,
    /// Default scopes for the PSU's consent.
    pub scopes: Vec<String>,
    /// The PSU's IP address, sent as `PSU-IP-Address` (the PSU is present).
    pub psu_ip: Option<String>,
    /// TCP+TLS connect timeout.
    pub connect_timeout: std::time::Duration,
    /// Timeout of one attempt, headers and body.
    pub timeout: std::time::Duration,
    /// Accept an expired QWAC (sandboxes only).
    pub allow_expired_certificate: bool,
    /// Accept `http://` URLs (local development only).
    pub allow_insecure_http: bool,
    /// The configuration file it came from, when any.
    pub source: Option<PathBuf>,
    /// Where `stet sync` keeps this profile's data (`sqlite:PATH`, `postgres://…`); `None`
    /// for the default SQLite file.
    pub store: Option<String>,
    /// The PKCS#11 module for keys given as `pkcs11:` URIs without `module-path`.
    pub pkcs11_module: Option<PathBuf>,
    /// Where `stet register` registers (default: the bank profile's endpoint).
    pub registration_url: Option<Url>,
    /// The profile's `registration` table.
    pub registration: RegistrationMetadata,
}

/// Where the QWAC comes from.
#[derive(Debug, Clone)]
pub enum QwacSource {
    /// PEM certificate chain and key.
    Pem {
        /// The chain.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// A PKCS#12 bundle.
    Pkcs12 {
        /// The bundle.
        path: PathBuf,
        /// The variable holding its password.
        password_env: Option<String>,
    },
}

impl Profile {
    /// The QSealC key's `pkcs11:` URI, when the key is in an HSM.
    pub fn qseal_key_uri(&self) -> Option<&str> {
        self.qseal_key
            .to_str()
            .filter(|s| stet_pkcs11::is_pkcs11_uri(s))
    }

    /// The QWAC key's `pkcs11:` URI, when the key is in an HSM.
    pub fn qwac_key_uri(&self) -> Option<&str> {
        match &self.qwac {
            QwacSource::Pem { key, .. } => key.to_str().filter(|s| stet_pkcs11::is_pkcs11_uri(s)),
            QwacSource::Pkcs12 { .. } => None,
        }
    }

    /// The weakened-security settings in force, to be said on every run.
    pub fn security_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.allow_expired_certificate {
            out.push(format!(
                "profile `{}` accepts an expired QWAC (allow_expired_certificate): for sandboxes only",
                self.name
            ));
        }
        if self.allow_insecure_http {
            out.push(format!(
                "profile `{}` allows plain HTTP (allow_insecure_http): for local development only",
                self.name
            ));
        }
        out
    }
}

/// The default configuration file path.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "stet").map(|d| d.config_dir().join("config.toml"))
}

/// Reads the configuration file at `path`.
pub fn load_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ConfigError::NotFound {
                path: path.display().to_string(),
            }
        } else {
            ConfigError::Read {
                path: path.display().to_string(),
                source,
            }
        }
    })?;
    crate::token::warn_if_readable_by_others(path);
    parse(&text, path)
}

/// Parses configuration text (`path` is for messages).
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        detail: e.to_string().trim_end().replace('\n', " "),
    })
}

/// Picks and resolves a profile.
///
/// `name` is the one asked for (`--profile`/`STET_PROFILE`); `env` looks up environment
/// variables (so tests can pass their own); `base_dir` resolves relative paths.
pub fn resolve(
    file: &ConfigFile,
    name: Option<&str>,
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Profile, ConfigError> {
    let resolver = Resolver::select(file, name, path, env)?;
    if resolver.provider()? == Provider::Powens {
        return Err(resolver.invalid(
            "provider",
            "this is a Powens profile, and this command talks to a STET bank: with Powens, use \
             `stet connectors`, `stet connect`, `stet connections`, `stet accounts`, \
             `stet balances` and `stet transactions`"
                .to_owned(),
        ));
    }
    resolver.resolve(path)
}

/// Which API a profile's `provider` names (`STET_PROVIDER` over the file).
pub fn provider(
    file: &ConfigFile,
    name: Option<&str>,
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Provider, ConfigError> {
    Resolver::select(file, name, path, env)?.provider()
}

/// Picks and resolves a profile whose `provider` is an aggregator (`powens`). The keys of a
/// STET bank (certificates, keys, OAuth endpoints) are refused: they would be ignored.
pub fn resolve_aggregator(
    file: &ConfigFile,
    name: Option<&str>,
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AggregatorProfile, ConfigError> {
    let resolver = Resolver::select(file, name, path, env)?;
    let provider = resolver.provider()?;
    if provider == Provider::Stet {
        return Err(resolver.invalid(
            "provider",
            "this command needs an aggregator profile: set `provider = \"powens\"`".to_owned(),
        ));
    }
    resolver.resolve_aggregator(provider, path)
}

impl<'a> Resolver<'a> {
    /// The profile `name` (else the default one) of `file`.
    fn select(
        file: &ConfigFile,
        name: Option<&str>,
        path: Option<&Path>,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Result<Resolver<'a>, ConfigError> {
        let shown = path
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the environment".into());
        let known = || {
            if file.profiles.is_empty() {
                "none".to_owned()
            } else {
                file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        let name = match name.or(file.default_profile.as_deref()) {
            Some(n) => n.to_owned(),
            None if file.profiles.len() == 1 => {
                file.profiles.keys().next().cloned().unwrap_or_default()
            }
            None if file.profiles.is_empty() => "default".to_owned(),
            None => {
                return Err(ConfigError::NoProfileChosen {
                    path: shown,
                    known: known(),
                });
            }
        };
        let raw = match file.profiles.get(&name) {
            Some(p) => p.clone(),
            // A profile entirely from the environment is allowed when the file has none.
            None if file.profiles.is_empty() => ProfileFile::default(),
            None => {
                return Err(ConfigError::UnknownProfile {
                    name,
                    path: shown,
                    known: known(),
                });
            }
        };
        let base_dir = path
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(Resolver {
            name,
            raw,
            env,
            base_dir,
        })
    }
}

struct Resolver<'a> {
    name: String,
    raw: ProfileFile,
    env: &'a dyn Fn(&str) -> Option<String>,
    base_dir: PathBuf,
}

impl Resolver<'_> {
    fn text(&self, key: &'static str, file: &Option<String>) -> Option<String> {
        (self.env)(&format!("STET_{}", key.to_ascii_uppercase()))
            .or_else(|| file.clone())
            .filter(|s| !s.trim().is_empty())
    }

    fn path(&self, key: &'static str, file: &Option<PathBuf>) -> Option<PathBuf> {
        let p = (self.env)(&format!("STET_{}", key.to_ascii_uppercase()))
            .map(PathBuf::from)
            .or_else(|| file.clone())?;
        // A key in an HSM is a `pkcs11:` URI, not a file under this folder.
        let uri = p.to_str().is_some_and(stet_pkcs11::is_pkcs11_uri);
        Some(if p.is_relative() && !uri {
            self.base_dir.join(p)
        } else {
            p
        })
    }

    fn flag(&self, key: &'static str, file: Option<bool>) -> Result<bool, ConfigError> {
        match (self.env)(&format!("STET_{}", key.to_ascii_uppercase())) {
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" => Ok(true),
                "0" | "false" | "no" | "" => Ok(false),
                _ => Err(self.invalid(key, format!("`{v}` is not true or false"))),
            },
            None => Ok(file.unwrap_or(false)),
        }
    }

    fn number(
        &self,
        key: &'static str,
        file: Option<u64>,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match (self.env)(&format!("STET_{}", key.to_ascii_uppercase())) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| self.invalid(key, format!("`{v}` is not a whole number of seconds"))),
            None => Ok(file.unwrap_or(default)),
        }
    }

    fn invalid(&self, key: &'static str, detail: String) -> ConfigError {
        ConfigError::Invalid {
            profile: self.name.clone(),
            key,
            detail,
        }
    }

    fn missing(&self, key: &'static str) -> ConfigError {
        ConfigError::Missing {
            key,
            profile: self.name.clone(),
        }
    }

    fn url(
        &self,
        key: &'static str,
        value: Option<String>,
        insecure_ok: bool,
    ) -> Result<Option<Url>, ConfigError> {
        let Some(value) = value else { return Ok(None) };
        let url = Url::parse(value.trim())
            .map_err(|e| self.invalid(key, format!("`{value}` is not a URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if insecure_ok => {}
            "http" if key == "redirect_uri" && is_loopback(&url) => {}
            other => {
                return Err(self.invalid(
                    key,
                    format!(
                        "`{value}` uses {other}: banks are reached over https only (for local \
                         development, `allow_insecure_http = true` allows http)"
                    ),
                ));
            }
        }
        if url.host_str().is_none() {
            return Err(self.invalid(key, format!("`{value}` has no host")));
        }
        Ok(Some(url))
    }

    fn resolve(self, source: Option<&Path>) -> Result<Profile, ConfigError> {
        let r = &self.raw;
        let allow_insecure_http = self.flag("allow_insecure_http", r.allow_insecure_http)?;
        let mut api_base = self
            .url(
                "api_base",
                self.text("api_base", &r.api_base),
                allow_insecure_http,
            )?
            .ok_or_else(|| self.missing("api_base"))?;
        // Joining relative paths needs the base to end with a slash.
        if !api_base.path().ends_with('/') {
            api_base.set_path(&format!("{}/", api_base.path()));
        }
        let client_secret = self
            .text("client_secret", &r.client_secret)
            .map(Secret::new);
        let client_auth = match (self.env)("STET_CLIENT_AUTH") {
            Some(v) => serde_json::from_value(serde_json::Value::String(v.clone())).map_err(|_| {
                self.invalid(
                    "client_auth",
                    format!("`{v}`: expected tls_client_auth, client_secret_basic or client_secret_post"),
                )
            })?,
            None => r.client_auth.unwrap_or(if client_secret.is_some() {
                ClientAuth::ClientSecretBasic
            } else {
                ClientAuth::TlsClientAuth
            }),
        };
        if client_auth != ClientAuth::TlsClientAuth && client_secret.is_none() {
            return Err(self.missing("client_secret"));
        }
        let qwac = match (
            self.path("qwac_p12", &r.qwac_p12),
            self.path("qwac_cert", &r.qwac_cert),
        ) {
            (Some(path), _) => QwacSource::Pkcs12 {
                path,
                password_env: self.text("qwac_p12_password_env", &r.qwac_p12_password_env),
            },
            (None, Some(cert)) => QwacSource::Pem {
                key: self
                    .path("qwac_key", &r.qwac_key)
                    .unwrap_or_else(|| cert.clone()),
                cert,
            },
            (None, None) => return Err(self.missing("qwac_cert")),
        };
        let scopes = match (self.env)("STET_SCOPES") {
            Some(v) => v
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => r.scopes.clone().unwrap_or_else(|| vec!["aisp".to_owned()]),
        };
        let signed_headers = match (self.env)("STET_SIGNED_HEADERS") {
            Some(v) => Some(v.split_whitespace().map(str::to_owned).collect()),
            None => r.signed_headers.clone(),
        };
        Ok(Profile {
            name: self.name.clone(),
            bank: self.text("bank", &r.bank),
            token_url: self.url(
                "token_url",
                self.text("token_url", &r.token_url),
                allow_insecure_http,
            )?,
            authorize_url: self.url(
                "authorize_url",
                self.text("authorize_url", &r.authorize_url),
                allow_insecure_http,
            )?,
            client_id: self.text("client_id", &r.client_id),
            client_secret,
            client_auth,
            redirect_uri: self.url(
                "redirect_uri",
                self.text("redirect_uri", &r.redirect_uri),
                allow_insecure_http,
            )?,
            qwac,
            qseal_key: self
                .path("qseal_key", &r.qseal_key)
                .ok_or_else(|| self.missing("qseal_key"))?,
            qseal_cert: self.path("qseal_cert", &r.qseal_cert),
            qseal_key_passphrase_env: self
                .text("qseal_key_passphrase_env", &r.qseal_key_passphrase_env),
            key_id: self
                .text("key_id", &r.key_id)
                .ok_or_else(|| self.missing("key_id"))?,
            ca_bundle: self.path("ca_bundle", &r.ca_bundle),
            signed_headers,
            scopes,
            psu_ip: self.text("psu_ip", &r.psu_ip),
            connect_timeout: std::time::Duration::from_secs(self.number(
                "connect_timeout_secs",
                r.connect_timeout_secs,
                10,
            )?),
            timeout: std::time::Duration::from_secs(self.number(
                "timeout_secs",
                r.timeout_secs,
                30,
            )?),
            allow_expired_certificate: self
                .flag("allow_expired_certificate", r.allow_expired_certificate)?,
            allow_insecure_http,
            api_base,
            source: source.map(Path::to_path_buf),
            store: self.text("store", &r.store),
            pkcs11_module: self.path("pkcs11_module", &r.pkcs11_module),
            registration_url: self.url(
                "registration_url",
                self.text("registration_url", &r.registration_url),
                allow_insecure_http,
            )?,
            registration: r.registration.clone().unwrap_or_default(),
        })
    }
}

/// The API a profile talks to: its `provider` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// A STET bank, directly, with the TPP's eIDAS certificates (the default).
    Stet,
    /// The Powens aggregator API, with a client id and secret (no certificates).
    Powens,
}

impl Provider {
    /// The value written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stet => "stet",
            Provider::Powens => "powens",
        }
    }
}

/// A profile for an aggregator (`provider = "powens"`), resolved like a STET one: environment
/// applied (`STET_CLIENT_SECRET`, `STET_DOMAIN`, …), paths absolute, URLs parsed.
///
/// ```toml
/// [profiles.powens]
/// provider = "powens"
/// domain = "acme-sandbox"                 # makes https://acme-sandbox.biapi.pro/2.0
/// client_id = "12345678"
/// # client_secret: better in STET_CLIENT_SECRET
/// redirect_uri = "http://127.0.0.1:8765/callback"   # for connectors that need a browser
/// ```
///
/// Checking `domain` and building the URL from it is the aggregator crate's job: this type
/// only carries what the file says.
#[derive(Debug, Clone)]
pub struct AggregatorProfile {
    /// The profile's name (its tokens are kept under it).
    pub name: String,
    /// Which aggregator.
    pub provider: Provider,
    /// The name the aggregator gave the client, e.g. `acme-sandbox`.
    pub domain: Option<String>,
    /// The API base URL, replacing the one made from `domain` (tests, a proxy).
    pub api_base: Option<Url>,
    /// The client id.
    pub client_id: Option<String>,
    /// The client secret.
    pub client_secret: Option<Secret>,
    /// Where the browser comes back after a redirect-based connection.
    pub redirect_uri: Option<Url>,
    /// Extra CA roots.
    pub ca_bundle: Option<PathBuf>,
    /// TCP+TLS connect timeout.
    pub connect_timeout: std::time::Duration,
    /// Timeout of one attempt, headers and body.
    pub timeout: std::time::Duration,
    /// Accept `http://` URLs (local development only).
    pub allow_insecure_http: bool,
    /// The configuration file it came from, when any.
    pub source: Option<PathBuf>,
}

impl AggregatorProfile {
    /// The weakened-security settings in force, to be said on every run.
    pub fn security_warnings(&self) -> Vec<String> {
        if self.allow_insecure_http {
            vec![format!(
                "profile `{}` allows plain HTTP (allow_insecure_http): for local development only",
                self.name
            )]
        } else {
            Vec::new()
        }
    }
}

impl Resolver<'_> {
    fn provider(&self) -> Result<Provider, ConfigError> {
        match self.text("provider", &self.raw.provider).as_deref() {
            None | Some("stet") => Ok(Provider::Stet),
            Some("powens") => Ok(Provider::Powens),
            Some(other) => Err(self.invalid(
                "provider",
                format!("`{other}` is not a provider stet knows: use \"stet\" (a STET bank, the default) or \"powens\""),
            )),
        }
    }

    fn resolve_aggregator(
        self,
        provider: Provider,
        source: Option<&Path>,
    ) -> Result<AggregatorProfile, ConfigError> {
        let r = &self.raw;
        // Keys of a STET bank mean nothing here: said rather than silently ignored, since a
        // profile that has them was probably meant for a bank.
        let stet_only: [(&'static str, bool); 16] = [
            ("bank", r.bank.is_some()),
            ("token_url", r.token_url.is_some()),
            ("authorize_url", r.authorize_url.is_some()),
            ("client_auth", r.client_auth.is_some()),
            ("qwac_cert", r.qwac_cert.is_some()),
            ("qwac_key", r.qwac_key.is_some()),
            ("qwac_p12", r.qwac_p12.is_some()),
            ("qwac_p12_password_env", r.qwac_p12_password_env.is_some()),
            ("qseal_key", r.qseal_key.is_some()),
            ("qseal_cert", r.qseal_cert.is_some()),
            (
                "qseal_key_passphrase_env",
                r.qseal_key_passphrase_env.is_some(),
            ),
            ("key_id", r.key_id.is_some()),
            ("signed_headers", r.signed_headers.is_some()),
            ("scopes", r.scopes.is_some()),
            ("psu_ip", r.psu_ip.is_some()),
            (
                "allow_expired_certificate",
                r.allow_expired_certificate.is_some(),
            ),
        ];
        if let Some((key, _)) = stet_only.iter().find(|(_, set)| *set) {
            return Err(self.invalid(
                key,
                format!(
                    "a {} profile has no use for it (it is for STET banks): remove it",
                    provider.as_str()
                ),
            ));
        }
        let allow_insecure_http = self.flag("allow_insecure_http", r.allow_insecure_http)?;
        let api_base = self.url(
            "api_base",
            self.text("api_base", &r.api_base),
            allow_insecure_http,
        )?;
        let domain = self.text("domain", &r.domain);
        if domain.is_none() && api_base.is_none() {
            return Err(self.missing("domain"));
        }
        Ok(AggregatorProfile {
            name: self.name.clone(),
            provider,
            domain,
            api_base,
            client_id: self.text("client_id", &r.client_id),
            client_secret: self
                .text("client_secret", &r.client_secret)
                .map(Secret::new),
            redirect_uri: self.url(
                "redirect_uri",
                self.text("redirect_uri", &r.redirect_uri),
                allow_insecure_http,
            )?,
            ca_bundle: self.path("ca_bundle", &r.ca_bundle),
            connect_timeout: std::time::Duration::from_secs(self.number(
                "connect_timeout_secs",
                r.connect_timeout_secs,
                10,
            )?),
            timeout: std::time::Duration::from_secs(self.number(
                "timeout_secs",
                r.timeout_secs,
                60,
            )?),
            allow_insecure_http,
            source: source.map(Path::to_path_buf),
        })
    }
}

/// Whether a URL points at this machine (RFC 8252 loopback redirects).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
default_profile = "sandbox"
[profiles.sandbox]
api_base = "https://127.0.0.1:8443/stet/psd2/v1.5"
token_url = "https://127.0.0.1:8443/token"
client_id = "PSDFR-ACPR-12345"
redirect_uri = "http://127.0.0.1/callback"
qwac_cert = "certs/qwac.pem"
qwac_key = "/abs/qwac.key"
qseal_key = "certs/qseal.key"
key_id = "qseal-1"

[profiles.other]
api_base = "https://bank.example/v1"
qwac_p12 = "q.p12"
qseal_key = "k.pem"
key_id = "k"
client_secret = "file-secret"
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn resolves_paths_defaults_and_base_slash() {
        let path = Path::new("/etc/stet/config.toml");
        let file = parse(FILE, path).unwrap();
        let p = resolve(&file, None, Some(path), &no_env).unwrap();
        assert_eq!(p.name, "sandbox");
        assert_eq!(
            p.api_base.as_str(),
            "https://127.0.0.1:8443/stet/psd2/v1.5/"
        );
        assert_eq!(p.client_auth, ClientAuth::TlsClientAuth);
        assert_eq!(p.qseal_key, Path::new("/etc/stet/certs/qseal.key"));
        match p.qwac {
            QwacSource::Pem { cert, key } => {
                assert_eq!(cert, Path::new("/etc/stet/certs/qwac.pem"));
                assert_eq!(key, Path::new("/abs/qwac.key"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.scopes, ["aisp"]);
        let other = resolve(&file, Some("other"), Some(path), &no_env).unwrap();
        assert_eq!(other.client_auth, ClientAuth::ClientSecretBasic);
        assert!(matches!(other.qwac, QwacSource::Pkcs12 { .. }));
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let path = Path::new("/etc/stet/config.toml");
        let file = parse(FILE, path).unwrap();
        let env = |k: &str| match k {
            "STET_CLIENT_SECRET" => Some("env-secret".to_owned()),
            "STET_API_BASE" => Some("https://override.example/base".to_owned()),
            "STET_CLIENT_AUTH" => Some("client_secret_post".to_owned()),
            _ => None,
        };
        let p = resolve(&file, Some("sandbox"), Some(path), &env).unwrap();
        assert_eq!(p.api_base.as_str(), "https://override.example/base/");
        assert_eq!(p.client_secret.as_ref().unwrap().expose(), "env-secret");
        assert_eq!(p.client_auth, ClientAuth::ClientSecretPost);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let path = Path::new("/etc/stet/config.toml");
        let err = parse("[profiles.a]\napi_bse = \"x\"\n", path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("api_bse"),
            "{err}"
        );

        let file = parse(FILE, path).unwrap();
        let err = resolve(&file, Some("nope"), Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`nope`") && err.contains("other, sandbox"),
            "{err}"
        );

        let file = parse("[profiles.a]\nkey_id = \"k\"\n[profiles.b]\n", path).unwrap();
        let err = resolve(&file, None, Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--profile"), "{err}");

        let err = resolve(&file, Some("a"), Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no `api_base`") && err.contains("STET_API_BASE"),
            "{err}"
        );

        let insecure = "[profiles.a]\napi_base = \"http://bank.example\"\nqwac_cert = \"q\"\nqseal_key = \"k\"\nkey_id = \"k\"\n";
        let file = parse(insecure, path).unwrap();
        let err = resolve(&file, None, Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("https only") && err.contains("allow_insecure_http"),
            "{err}"
        );
        let env = |k: &str| (k == "STET_ALLOW_INSECURE_HTTP").then(|| "true".to_owned());
        let p = resolve(&file, None, Some(path), &env).unwrap();
        assert_eq!(p.security_warnings().len(), 1);

        let secret_auth = "[profiles.a]\napi_base = \"https://b\"\nqwac_cert = \"q\"\nqseal_key = \"k\"\nkey_id = \"k\"\nclient_auth = \"client_secret_post\"\n";
        let file = parse(secret_auth, path).unwrap();
        let err = resolve(&file, None, Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `client_secret`"), "{err}");
    }

    const POWENS: &str = r#"
[profiles.powens]
provider = "powens"
domain = "acme-sandbox"
client_id = "1234"
client_secret = "file-secret"
ca_bundle = "ca.pem"

[profiles.bank]
api_base = "https://bank.example/v1"
qwac_cert = "q.pem"
qseal_key = "k.pem"
key_id = "k"
"#;

    #[test]
    fn aggregator_profiles_resolve_apart_from_stet_ones() {
        let path = Path::new("/etc/stet/config.toml");
        let file = parse(POWENS, path).unwrap();
        assert_eq!(
            provider(&file, Some("powens"), Some(path), &no_env).unwrap(),
            Provider::Powens
        );
        assert_eq!(
            provider(&file, Some("bank"), Some(path), &no_env).unwrap(),
            Provider::Stet
        );
        let p = resolve_aggregator(&file, Some("powens"), Some(path), &no_env).unwrap();
        assert_eq!(p.domain.as_deref(), Some("acme-sandbox"));
        assert_eq!(p.client_secret.as_ref().unwrap().expose(), "file-secret");
        assert_eq!(p.ca_bundle.as_deref(), Some(Path::new("/etc/stet/ca.pem")));
        assert!(p.api_base.is_none());

        // The environment overrides, as for a STET profile.
        let env = |k: &str| (k == "STET_CLIENT_SECRET").then(|| "env-secret".to_owned());
        let p = resolve_aggregator(&file, Some("powens"), Some(path), &env).unwrap();
        assert_eq!(p.client_secret.as_ref().unwrap().expose(), "env-secret");

        // A STET command on a Powens profile, and the other way round, say what to use.
        let err = resolve(&file, Some("powens"), Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Powens profile") && err.contains("stet connect"),
            "{err}"
        );
        let err = resolve_aggregator(&file, Some("bank"), Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("provider = \"powens\""), "{err}");
    }

    #[test]
    fn aggregator_profiles_refuse_bank_keys_and_unknown_providers() {
        let path = Path::new("/c.toml");
        let file = parse(
            "[profiles.p]\nprovider = \"powens\"\ndomain = \"x\"\nqwac_cert = \"q.pem\"\n",
            path,
        )
        .unwrap();
        let err = resolve_aggregator(&file, None, Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`qwac_cert`") && err.contains("remove it"),
            "{err}"
        );

        let file = parse("[profiles.p]\nprovider = \"plaid\"\n", path).unwrap();
        let err = provider(&file, None, Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`plaid`") && err.contains("\"powens\""),
            "{err}"
        );

        let file = parse("[profiles.p]\nprovider = \"powens\"\n", path).unwrap();
        let err = resolve_aggregator(&file, None, Some(path), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no `domain`") && err.contains("STET_DOMAIN"),
            "{err}"
        );
    }

    #[test]
    fn a_profile_can_come_from_the_environment_alone() {
        let env = |k: &str| match k {
            "STET_API_BASE" => Some("https://bank.example/v1".to_owned()),
            "STET_QWAC_CERT" => Some("/q.pem".to_owned()),
            "STET_QSEAL_KEY" => Some("/k.pem".to_owned()),
            "STET_KEY_ID" => Some("k".to_owned()),
            _ => None,
        };
        let p = resolve(&ConfigFile::default(), None, None, &env).unwrap();
        assert_eq!(p.name, "default");
        assert_eq!(p.key_id, "k");
    }
}
