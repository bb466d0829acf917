//! [`StoreError`]: what went wrong with the store, and what to do about it.

/// Why the store could not be opened, read or written. Each message names the store (its
/// location, a password hidden) and says what to do. Nothing is ever half written: a failed
/// write rolls its whole transaction back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL cannot be read.
    #[error(
        "`{url}` is not a store URL ({reason}): use sqlite:PATH or postgres://USER@HOST/DATABASE"
    )]
    BadUrl {
        /// The URL, password hidden.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database cannot be reached or opened.
    #[error("cannot open the store {location}: {message}")]
    Unreachable {
        /// Where.
        location: String,
        /// Why, and what to do.
        message: String,
    },
    /// The store was made by a newer stet.
    #[error(
        "the store {location} has schema version {found}, newer than this stet knows ({known}): \
         upgrade stet, or use another store with --store"
    )]
    NewerSchema {
        /// Where.
        location: String,
        /// The store's version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The store can be read but not written.
    #[error(
        "the store {location} is read-only: nothing was written; make the file and its folder \
         writable, or choose another store with --store"
    )]
    ReadOnly {
        /// Where.
        location: String,
    },
    /// Another process held the store for longer than the timeout.
    #[error(
        "the store {location} stayed locked by another process for {seconds} s: nothing was \
         written; run the command again when the other one has finished"
    )]
    Locked {
        /// Where.
        location: String,
        /// The timeout.
        seconds: u64,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the store {location}: {message}")]
    Migrate {
        /// Where.
        location: String,
        /// Why.
        message: String,
    },
    /// A query failed.
    #[error("the store {location}: {what}: {message}")]
    Query {
        /// Where.
        location: String,
        /// What was being done.
        what: String,
        /// The database's message.
        message: String,
    },
    /// A stored value cannot be read back (a row edited by hand?).
    #[error("the store {location} holds a value stet cannot read: {message}")]
    Corrupt {
        /// Where.
        location: String,
        /// Which and why.
        message: String,
    },
    /// A fleet command on a store that is not PostgreSQL.
    #[error(
        "the store {location} is SQLite: the fleet (connections, jobs, workers) needs PostgreSQL; \
         give one with --store postgres://USER@HOST/DATABASE (or STET_STORE, or the profile's `store`)"
    )]
    FleetNeedsPostgres {
        /// Where.
        location: String,
    },
    /// `stet psu add` for a name a live connection already has.
    #[error(
        "profile {profile} already has a connection named {name} (id {id}): choose another \
         --name, or `stet psu remove {id}` first"
    )]
    ConnectionExists {
        /// The profile.
        profile: String,
        /// The name.
        name: String,
        /// The existing connection's id.
        id: i64,
    },
    /// No connection has that id or name.
    #[error("no connection {connection} in the store: `stet psu list` shows them")]
    NoSuchConnection {
        /// The id or name asked for.
        connection: String,
    },
    /// A name several profiles use.
    #[error("connection name {name} is used in profiles {}: give --profile, or the id", profiles.join(", "))]
    AmbiguousConnection {
        /// The name.
        name: String,
        /// The profiles that have it.
        profiles: Vec<String>,
    },
    /// The connection is not active (its consent needs the PSU, or it was removed).
    #[error(
        "connection {connection} is not active: `stet psu show {connection}` says why; the PSU \
         must give a new consent (`stet psu add` with the same --name)"
    )]
    ConnectionNotActive {
        /// The connection.
        connection: String,
    },
}

impl StoreError {
    /// Whether trying again later may work (a lock held too long).
    pub fn is_temporary(&self) -> bool {
        matches!(self, StoreError::Locked { .. })
    }

    /// Whether the configuration (the URL, the stet version) is at fault.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            StoreError::BadUrl { .. }
                | StoreError::NewerSchema { .. }
                | StoreError::FleetNeedsPostgres { .. }
        )
    }
}
