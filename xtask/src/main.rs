//! Project chores, run as `cargo xtask <task>` (the alias is in `.cargo/config.toml`).
//!
//! ```text
//! cargo xtask codegen          regenerate crates/models/src/generated.rs from openapi/
//! cargo xtask codegen --check  fail if the committed file differs from a fresh generation
//! cargo xtask conformance-schemas [--check]  extract the official schemas stet conformance carries
//! cargo xtask test [ARGS…]     install and start what the tests need, run them, stop it all
//! cargo xtask setup            install only; print the variables for running single tests
//! ```

use std::process::ExitCode;

use xtask::{codegen, schemas, testenv};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  codegen            regenerate crates/models/src/generated.rs from openapi/stet-psd2.openapi.yaml
  codegen --check    exit non-zero if the committed generated.rs is not a fresh generation
  conformance-schemas [--check]
                     extract the official STET 1.5.0.43 and 1.4.0.47 schemas (from
                     ../shared/reference/stet) into crates/conformance/schemas/
  test [ARGS…]       install what the tests need (Debian packages, a Python venv), start a
                     throwaway PostgreSQL and a SoftHSM2 token folder, run
                     `cargo test --workspace --locked ARGS…`, stop and remove them
  setup              install only, and print the variables that single tests read";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["codegen"] => run_codegen(false),
        ["codegen", "--check"] => run_codegen(true),
        ["conformance-schemas"] => run_schemas(false),
        ["conformance-schemas", "--check"] => run_schemas(true),
        ["test", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            testenv::run(&rest)
        }
        ["setup"] => testenv::setup(),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run_schemas(check: bool) -> ExitCode {
    let root = codegen::workspace_root();
    let files = match schemas::extract(&root) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: extracting the STET schemas: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stale = false;
    for (name, text) in files {
        let path = root.join(schemas::OUTPUT_DIR).join(name);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        if check {
            eprintln!("error: {} differs from a fresh extraction", path.display());
            stale = true;
        } else if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            eprintln!("wrote {}", path.display());
        }
    }
    if stale {
        eprintln!("run `cargo xtask conformance-schemas` and commit the result");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn run_codegen(check: bool) -> ExitCode {
    let root = codegen::workspace_root();
    let fresh = match codegen::generate_from(&root) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: codegen failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = root.join(codegen::OUTPUT);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if check {
        if fresh == committed {
            eprintln!("{} is up to date", codegen::OUTPUT);
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "error: {} differs from a fresh generation from {}\nrun `cargo xtask codegen` and commit the result",
                codegen::OUTPUT,
                codegen::SPEC
            );
            ExitCode::FAILURE
        }
    } else if fresh == committed {
        eprintln!("{} is already up to date", codegen::OUTPUT);
        ExitCode::SUCCESS
    } else {
        match std::fs::write(&path, fresh) {
            Ok(()) => {
                eprintln!("wrote {}", codegen::OUTPUT);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: writing {}: {e}", path.display());
                ExitCode::FAILURE
            }
        }
    }
}
