//! The migrations are embedded by `sqlx::migrate!`, which on a stable compiler cannot tell
//! Cargo about a file added to their folders: without this, a build after a new migration
//! could keep the old list.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
