//! Exit codes and the one-line error every failing command ends with.
//!
//! The codes follow BSD `sysexits.h`, as cargo-like tools do, and are listed in README.md:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the check asked for failed (`stet sig verify`: the signature is not valid) |
//! | 2 | usage: unknown command or flag, bad argument value |
//! | 65 | the input could not be read as what it should be (a malformed HTTP request) |
//! | 66 | an input file does not exist or cannot be read |
//! | 74 | output could not be written |
//! | 78 | configuration: a key or certificate cannot be used (bad PEM, wrong passphrase, too short) |

use std::fmt::Display;
use std::process::ExitCode;

/// Exit code: the check failed.
pub const CHECK_FAILED: u8 = 1;
/// Exit code: the input data is malformed.
pub const DATA: u8 = 65;
/// Exit code: an input file cannot be read.
pub const NO_INPUT: u8 = 66;
/// Exit code: output cannot be written.
pub const IO: u8 = 74;
/// Exit code: a configuration, key or certificate problem.
pub const CONFIG: u8 = 78;

/// A failed command: what to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A failure with `code` and a message that says what was wrong and what to do.
    pub fn new(code: u8, message: impl Display) -> Self {
        Failure {
            code,
            message: message.to_string(),
        }
    }

    /// Prints `error: …` on stderr and gives the exit code.
    pub fn report(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

/// Attaches an exit code and context to an error.
pub trait OrExit<T> {
    /// On error, a [`Failure`] with `code` and the message `context: error`.
    fn or_exit(self, code: u8, context: impl Display) -> Result<T, Failure>;
}

impl<T, E: Display> OrExit<T> for Result<T, E> {
    fn or_exit(self, code: u8, context: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(code, format!("{context}: {e}")))
    }
}
