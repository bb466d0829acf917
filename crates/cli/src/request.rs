//! `stet request`: one signed, authenticated STET call, printed: a signed curl for STET.

use std::io::{Read as _, Write as _};

use clap::Args;
use stet_transport::{Auth, Method, PsuContext, StetRequest};

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  stet request GET accounts
  stet request -i GET accounts/ACC-1/transactions?dateFrom=2026-01-01 --psu-ip 192.0.2.10
  stet request POST payment-requests --data @payment.json --scope pisp

The body is printed on stdout as received; -i adds the status line and headers before it.
The exit code says how it went: 0 for 2xx, otherwise as listed in README.md (77 for 401/403,
75 for 429, 69 for 5xx, 65 for other errors).")]
pub struct RequestArgs {
    /// The HTTP method: GET, POST, PUT, DELETE
    #[arg(value_name = "METHOD")]
    method: String,
    /// Relative to the profile's api_base (`accounts`), or an absolute path or URL on the bank's host
    #[arg(value_name = "PATH")]
    path: String,
    /// The JSON body, or @FILE to read it from a file (@- for stdin)
    #[arg(short = 'd', long, value_name = "JSON|@FILE")]
    data: Option<String>,
    /// Which token to send: aisp (the PSU's consent), pisp or cbpii (client credentials), any
    /// other scope the bank wants, or none [default: from the path]
    #[arg(long, value_name = "SCOPE")]
    scope: Option<String>,
    /// Print the status line and the response headers before the body
    #[arg(short = 'i', long)]
    include: bool,
}

pub fn run(args: RequestArgs, globals: &Globals) -> Result<u8, Failure> {
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| Failure::new(2, format!("`{}` is not an HTTP method", args.method)))?;
    let body = match &args.data {
        None => None,
        Some(data) => Some(read_body(data)?),
    };
    let profile = crate::profile::load(globals)?;
    let psu_ip = globals.psu_ip.clone().or_else(|| profile.psu_ip.clone());
    let auth = auth_for(args.scope.as_deref(), &args.path);
    let request = StetRequest {
        method: method.clone(),
        target: args.path.clone(),
        body,
        auth,
        psu: psu_ip.map(PsuContext::present),
        headers: Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")?;
    let response = runtime.block_on(async {
        let transport = crate::profile::transport(&profile, &crate::profile::bank(&profile)?)?;
        transport.send(&request).await.map_err(Failure::from)
    })?;

    let mut out = Vec::with_capacity(response.body.len() + 512);
    if args.include {
        out.extend_from_slice(format!("HTTP/1.1 {}\r\n", response.status).as_bytes());
        for (name, value) in &response.headers {
            let value = if name == "set-cookie" || name == "authorization" {
                "<redacted>"
            } else {
                value.to_str().unwrap_or("<binary>")
            };
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&response.body);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .or_exit(exit::IO, "cannot write to stdout")?;

    let code = exit::for_status(response.status);
    if code != 0 {
        let message = stet_transport::bank_message(&response.body)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        eprintln!(
            "error: {method} {} answered HTTP {}{message} (X-Request-ID {})",
            response.url, response.status, response.request_id
        );
    }
    Ok(code)
}

/// The token a call needs: the scope given, else guessed from the path.
fn auth_for(scope: Option<&str>, path: &str) -> Auth {
    let scope = scope.map(str::to_owned).unwrap_or_else(|| {
        if path.contains("payment-requests") {
            "pisp".to_owned()
        } else if path.contains("funds-confirmations") {
            "cbpii".to_owned()
        } else {
            "aisp".to_owned()
        }
    });
    match scope.as_str() {
        "none" => Auth::None,
        // The PSU's consent, obtained by `stet auth login`, stored under `aisp`.
        "aisp" | "extended_transaction_history" => Auth::Consent("aisp".to_owned()),
        other => Auth::ClientCredentials(vec![other.to_owned()]),
    }
}

fn read_body(data: &str) -> Result<Vec<u8>, Failure> {
    let bytes = match data.strip_prefix('@') {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .or_exit(exit::NO_INPUT, "cannot read the body from stdin")?;
            buf
        }
        Some(path) => std::fs::read(path).or_exit(exit::NO_INPUT, format!("--data @{path}"))?,
        None => data.as_bytes().to_vec(),
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| Failure::new(exit::DATA, format!("--data is not valid JSON: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_follows_the_path_unless_named() {
        assert_eq!(auth_for(None, "accounts"), Auth::Consent("aisp".into()));
        assert_eq!(
            auth_for(None, "payment-requests/p1"),
            Auth::ClientCredentials(vec!["pisp".into()])
        );
        assert_eq!(
            auth_for(None, "funds-confirmations"),
            Auth::ClientCredentials(vec!["cbpii".into()])
        );
        assert_eq!(auth_for(Some("none"), "accounts"), Auth::None);
        assert_eq!(
            auth_for(Some("extended_transaction_history"), "x"),
            Auth::Consent("aisp".into())
        );
    }
}
