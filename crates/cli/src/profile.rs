//! Loading the configuration profile a command works with.

use std::path::PathBuf;

use stet_transport::{FileTokenStore, Profile, Secret, Transport, config};

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
    // Said on every run, even with -q: a weakened setting must never be forgotten.
    for warning in profile.security_warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(profile)
}

fn config_failure(e: config::ConfigError) -> Failure {
    Failure::new(exit::CONFIG, e)
}

/// The transport for `profile`: tokens in the platform's data folder, or `STET_ACCESS_TOKEN`
/// when set.
pub fn transport(profile: &Profile) -> Result<Transport, Failure> {
    let store_dir = FileTokenStore::default_dir().ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            "cannot find a data folder for the token store (is HOME set?)",
        )
    })?;
    let access_token = std::env::var("STET_ACCESS_TOKEN").ok().map(Secret::new);
    if access_token.is_some() {
        tracing::warn!("using the token in STET_ACCESS_TOKEN instead of OAuth");
    }
    Ok(Transport::builder(profile)
        .token_store(std::sync::Arc::new(FileTokenStore::new(store_dir)))
        .access_token(access_token)
        .build()?)
}
