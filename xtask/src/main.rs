//! Project chores, run as `cargo xtask <task>` (see `.cargo/config.toml`).

fn main() {
    eprintln!("usage: cargo xtask <task>\n\nno tasks yet");
    std::process::exit(2);
}
