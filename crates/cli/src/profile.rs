//! Loading the configuration profile a command works with.

use std::path::PathBuf;

use std::sync::Arc;

use stet_client::bank::{BankProfile, BankProfiles};
use stet_client::{ClientOptions, FileBudgetStore, StetClient};
use stet_transport::{FileTokenStore, Profile, PsuContext, Secret, Transport, config};

use crate::Globals;
use crate::exit::{self, Failure};

/// The configuration file to read: `--config`/`STET_CONFIG`, else the platform default.
/// `explicit` says whether the user named it (then it must exist).
pub fn config_path(globals: &Globals) -> (Option<PathBuf>, bool) {
    match &globals.config {
        Some(p) => (Some(p.clone()), true),
        None => (config::default_path(), false),
    }
}

/// The profile chosen by `--profile`/`STET_PROFILE`, with the environment applied. Without a
/// configuration file, a profile may come from `STET_*` variables alone.
pub fn load(globals: &Globals) -> Result<Profile, Failure> {
    let (path, explicit) = config_path(globals);
    let file = match &path {
        Some(p) if explicit || p.exists() => Some(config::load_file(p).map_err(config_failure)?),
        _ => None,
    };
    let env = |k: &str| std::env::var(k).ok();
    let profile = config::resolve(
        &file.unwrap_or_default(),
        globals.profile.as_deref(),
        path.as_deref().filter(|p| p.exists()),
        &env,
    )
    .map_err(config_failure)?;
    // Said on every run, even with -q: a weakened setting must never be forgotten. Each
    // command loads its profile once, so it is said once.
    for warning in profile.security_warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(profile)
}

fn config_failure(e: config::ConfigError) -> Failure {
    Failure::new(exit::CONFIG, e)
}

/// The bank dialect profile the configuration names (`bank`), with the user's own profiles
/// from `STET_BANK_PROFILES`; `generic-1.5` when none is named.
pub fn bank(profile: &Profile) -> Result<BankProfile, Failure> {
    let mut banks = BankProfiles::builtin();
    if let Some(dir) = std::env::var_os("STET_BANK_PROFILES") {
        banks
            .add_dir(std::path::Path::new(&dir))
            .map_err(|e| Failure::new(exit::CONFIG, e))?;
    }
    let name = profile.bank.as_deref().unwrap_or("generic-1.5");
    banks.get(name).map_err(|e| {
        Failure::new(
            exit::CONFIG,
            format!("profile `{}`, `bank`: {e}", profile.name),
        )
    })
}

/// The folder of the token store (and of the unattended-call budget).
pub fn data_dir() -> Result<PathBuf, Failure> {
    FileTokenStore::default_dir().ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            "cannot find a data folder for the token store (is HOME set?)",
        )
    })
}

/// The access token in `STET_ACCESS_TOKEN`, if one is set. Set but empty (or blank) is unset:
/// an empty Bearer token is never sent.
pub fn env_access_token() -> Option<Secret> {
    std::env::var("STET_ACCESS_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(Secret::new)
}

/// The transport for `profile`, signing as `bank` asks: tokens in the platform's data folder,
/// or `STET_ACCESS_TOKEN` when set ([`env_access_token`]).
pub fn transport(profile: &Profile, bank: &BankProfile) -> Result<Transport, Failure> {
    let access_token = env_access_token();
    if access_token.is_some() {
        tracing::warn!("using the token in STET_ACCESS_TOKEN instead of OAuth");
    }
    Ok(stet_client::transport_builder(profile, bank)
        .token_store(Arc::new(FileTokenStore::new(data_dir()?)))
        .access_token(access_token)
        .build()?)
}

/// The typed client for the chosen profile. `--psu-ip` (or the profile's `psu_ip`) marks the
/// PSU as present; without it, calls count against the unattended budget, kept across runs.
pub fn client(globals: &Globals, concurrency: Option<usize>) -> Result<StetClient, Failure> {
    client_for(&load(globals)?, globals, concurrency)
}

/// [`client`] for a profile the command has already loaded (and needs itself too).
pub fn client_for(
    profile: &Profile,
    globals: &Globals,
    concurrency: Option<usize>,
) -> Result<StetClient, Failure> {
    let bank = bank(profile)?;
    let transport = transport(profile, &bank)?;
    let psu = globals
        .psu_ip
        .clone()
        .or_else(|| profile.psu_ip.clone())
        .map(PsuContext::present);
    let mut options = ClientOptions {
        psu,
        budget_store: Some(Arc::new(FileBudgetStore::for_profile(
            &data_dir()?,
            &profile.name,
        ))),
        ..ClientOptions::default()
    };
    if let Some(n) = concurrency {
        options.concurrency = n.max(1);
    }
    Ok(StetClient::with_options(transport, bank, options))
}
