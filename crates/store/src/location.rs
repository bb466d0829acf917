//! Where a store is: `sqlite:PATH` or `postgres://…`, and the default file.

use std::path::{Path, PathBuf};

use crate::StoreError;

/// A store's location, parsed.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, its URL as given (it may hold a password).
    Postgres(String),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl Location {
    /// Reads `sqlite:PATH`, `sqlite://PATH` or `postgres://…` (`postgresql://…`).
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let bad = |reason: &str| StoreError::BadUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(bad("no file after sqlite:"));
            }
            if path == ":memory:" {
                return Err(bad("an in-memory store would forget everything at exit"));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
            return Ok(Location::Postgres(url.to_owned()));
        }
        Err(bad("unknown scheme"))
    }

    /// The default store: `stet.db` in the platform's data folder
    /// (`~/.local/share/stet/stet.db` on Linux).
    pub fn default_sqlite() -> Option<Location> {
        directories::ProjectDirs::from("", "", "stet")
            .map(|d| Location::Sqlite(d.data_dir().join("stet.db")))
    }

    /// The location for people: the file, or the URL with its password hidden.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(path) => format!("sqlite:{}", path.display()),
            Location::Postgres(url) => redact(url),
        }
    }

    /// The SQLite file, if it is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }
}

/// A URL with its password (and any `password=` parameter) replaced by `***`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("password") {
                        "***".to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        // Not a URL: show the scheme only, it may hold anything.
        Err(_) => match url.split_once(':') {
            Some((scheme, _)) if scheme.len() < 20 => format!("{scheme}:…"),
            _ => "(unreadable URL)".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_passwords_hidden() {
        assert_eq!(
            Location::parse("sqlite:/tmp/a.db").unwrap(),
            Location::Sqlite("/tmp/a.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:///tmp/a.db").unwrap(),
            Location::Sqlite("/tmp/a.db".into())
        );
        let pg = Location::parse("postgres://u:hunter2@db/stet?password=x").unwrap();
        assert!(!pg.display().contains("hunter2"), "{}", pg.display());
        assert!(!pg.display().contains("=x"), "{}", pg.display());
        let err = Location::parse("mysql://u:hunter2@db/x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sqlite:PATH") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(Location::parse("sqlite:").is_err());
        assert!(Location::parse("sqlite::memory:").is_err());
    }
}
