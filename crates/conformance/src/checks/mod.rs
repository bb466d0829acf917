//! The checks, in Rust: one function per kind of case. The catalogue names them
//! (`signature.missing`); a check gets a [`Ctx`] (the bank, the prerequisites, a log of what it
//! sends) and gives a [`Verdict`].
//!
//! A check sends what the standard says the bank must accept or refuse, and judges the
//! answer alone: it never depends on what another case saw, so that cases can run at the same
//! time and a bank fault shows in the one case that targets it.

mod budget;
mod funds;
mod oauth;
mod pagination;
mod payments;
mod resources;
mod signature;
mod transport;

use futures_util::future::BoxFuture;
use stet_transport::{Method, RawRequest, Token};

use crate::outcome::Verdict;
use crate::session::{Answer, Log, NoAnswer, Session};

/// A check: it may end early with `Err` (a SKIP, or a FAIL when the bank could not be
/// reached), which the runner takes as the verdict.
pub(crate) type CheckFn = for<'a> fn(&'a Ctx<'a>) -> BoxFuture<'a, Result<Verdict, Verdict>>;

macro_rules! registry {
    ($($name:literal => $f:path),* $(,)?) => {
        const CHECKS: &[(&str, CheckFn)] = &[$(($name, |ctx| Box::pin($f(ctx)))),*];
    };
}

registry! {
    "tls.no_client_certificate" => transport::no_client_certificate,
    "tls.untrusted_client_certificate" => transport::untrusted_client_certificate,
    "oauth.no_token" => oauth::no_token,
    "oauth.invalid_token" => oauth::invalid_token,
    "oauth.expired_token" => oauth::expired_token,
    "oauth.wrong_scope" => oauth::wrong_scope,
    "oauth.state_returned" => oauth::state_returned,
    "oauth.pkce_required" => oauth::pkce_required,
    "oauth.pkce_verifier_checked" => oauth::pkce_verifier_checked,
    "oauth.token_endpoint_needs_certificate" => oauth::token_endpoint_needs_certificate,
    "oauth.code_single_use" => oauth::code_single_use,
    "signature.missing" => signature::missing,
    "signature.tampered" => signature::tampered,
    "signature.digest_mismatch" => signature::digest_mismatch,
    "signature.body_changed" => signature::body_changed,
    "signature.stale_date" => signature::stale_date,
    "signature.unknown_key_id" => signature::unknown_key_id,
    "signature.header_left_out" => signature::header_left_out,
    "resources.accounts" => resources::accounts,
    "resources.balances" => resources::balances,
    "resources.transactions" => resources::transactions,
    "resources.identity" => resources::identity,
    "resources.beneficiaries" => resources::beneficiaries,
    "resources.content_type" => resources::content_type,
    "resources.request_id_echoed" => resources::request_id_echoed,
    "resources.error_model" => resources::error_model,
    "pagination.walk_to_end" => pagination::walk_to_end,
    "pagination.no_loop" => pagination::no_loop,
    "pagination.self_link" => pagination::self_link,
    "pagination.same_origin" => pagination::same_origin,
    "pagination.empty_is_204" => pagination::empty_is_204,
    "pagination.date_range" => pagination::date_range,
    "pagination.history_window" => pagination::history_window,
    "payments.consent_approval" => payments::consent_approval,
    "payments.lifecycle" => payments::lifecycle,
    "payments.confirmation" => payments::confirmation,
    "payments.cancellation" => payments::cancellation,
    "funds.answers" => funds::answers,
    "budget.fifth_call" => budget::fifth_call,
}

/// The check called `name`.
pub(crate) fn lookup(name: &str) -> Option<CheckFn> {
    CHECKS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Every check's name.
pub fn names() -> Vec<&'static str> {
    CHECKS.iter().map(|(n, _)| *n).collect()
}

/// Which token a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bearer {
    /// The PSU's consent (AISP).
    Consent,
    /// Client credentials for the PISP scope.
    Pisp,
    /// Client credentials for the CBPII scope.
    Cbpii,
}

/// What a check works with: the session and its own log.
pub(crate) struct Ctx<'a> {
    pub(crate) session: &'a Session,
    pub(crate) log: Log,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(session: &'a Session) -> Self {
        Ctx {
            session,
            log: Log::default(),
        }
    }

    pub(crate) fn bank(&self) -> &stet_client::bank::BankProfile {
        self.session.bank()
    }

    pub(crate) fn dialect(&self) -> stet_client::bank::Dialect {
        self.session.bank().dialect
    }

    /// The token for `bearer`, renewed first when `renew`.
    pub(crate) async fn token(&self, bearer: Bearer, renew: bool) -> Result<Token, Verdict> {
        let scopes = &self.bank().scopes;
        match bearer {
            Bearer::Consent => self.session.consent(renew).await,
            Bearer::Pisp => self.session.client_token(&scopes.pisp, renew).await,
            Bearer::Cbpii => self.session.client_token(&scopes.cbpii, renew).await,
        }
    }

    /// A request built by the pipeline, not signed, attended.
    pub(crate) fn build(
        &self,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
        token: Option<&Token>,
    ) -> Result<RawRequest, Verdict> {
        self.session.build(method, target, body, token, true)
    }

    /// Signs with the bank's profile.
    pub(crate) fn sign(&self, raw: &mut RawRequest) -> Result<(), Verdict> {
        self.session.sign(raw)
    }

    /// Sends `raw` as it is; no answer at all is a FAIL that says why.
    pub(crate) async fn send(&self, purpose: &str, raw: &RawRequest) -> Result<Answer, Verdict> {
        self.session
            .send(&self.log, purpose, raw)
            .await
            .map_err(|e| Verdict::fail(format!("{purpose}: no answer from the bank: {e}")))
    }

    /// A well-formed request (signed, attended, with `bearer`'s token): what the bank must
    /// serve. A 401 that refuses the token (it expired on the way) is retried once with a
    /// renewed one.
    pub(crate) async fn call(
        &self,
        purpose: &str,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
        bearer: Bearer,
    ) -> Result<Answer, Verdict> {
        let mut renew = false;
        loop {
            let token = self.token(bearer, renew).await?;
            let mut raw = self.build(method.clone(), target, body.clone(), Some(&token))?;
            self.sign(&mut raw)?;
            let answer = self.send(purpose, &raw).await?;
            if answer.status == 401 && !renew && token_refused(&answer) {
                renew = true;
                continue;
            }
            return Ok(answer);
        }
    }

    /// A body in the bank's dialect.
    pub(crate) fn body<T: serde::Serialize>(&self, value: &T) -> Result<Vec<u8>, Verdict> {
        stet_models::to_json_vec(value, self.session.models_dialect())
            .map_err(|e| Verdict::fail(format!("cannot write the request body: {e}")))
    }
}

/// Whether a 401 refuses the token (rather than the signature or the certificate).
fn token_refused(answer: &Answer) -> bool {
    let header = answer
        .header("www-authenticate")
        .is_some_and(|h| h.contains("invalid_token"));
    let text = String::from_utf8_lossy(&answer.body).to_ascii_lowercase();
    header || (text.contains("token") && (text.contains("expired") || text.contains("invalid")))
}

/// The verdict on a request the bank must refuse: `expected` statuses pass (with an answer in
/// STET's error model when `error_model`), other refusals warn, an acceptance fails.
pub(crate) fn refused(
    ctx: &Ctx<'_>,
    answer: &Answer,
    what: &str,
    expected: &[u16],
    error_model: bool,
) -> Verdict {
    let status = answer.status;
    let wanted = expected
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    if answer.is_success() || (300..400).contains(&status) {
        return Verdict::fail(format!(
            "the bank accepted {what}: {}; it must refuse it ({wanted})",
            answer.brief()
        ));
    }
    if status >= 500 {
        return Verdict::fail(format!(
            "the bank failed on {what} with {} instead of refusing it ({wanted})",
            answer.brief()
        ));
    }
    if error_model && let Err(why) = crate::schema::error_model(ctx.dialect(), status, &answer.body)
    {
        return Verdict::fail(format!(
            "the bank refused {what} with HTTP {status}, but {why}"
        ));
    }
    if expected.contains(&status) {
        Verdict::pass(format!("refused {what}: {}", answer.brief()))
    } else {
        Verdict::warn(format!(
            "refused {what} with {} where STET answers {wanted}",
            answer.brief()
        ))
    }
}

/// A path segment, percent-encoded.
pub(crate) fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Validates an answer's body against `schema`: FAIL on errors, WARN on unknown fields.
pub(crate) fn schema_verdict(ctx: &Ctx<'_>, answer: &Answer, schema: &str, what: &str) -> Verdict {
    let dialect = ctx.dialect();
    let Some(json) = answer.json() else {
        return Verdict::fail(format!(
            "{what} answered {} with a body that is not JSON",
            answer.status
        ));
    };
    let report = crate::schema::validate(dialect, schema, &json);
    let version = crate::schema::official_version(dialect);
    if !report.errors.is_empty() {
        let shown: Vec<&str> = report.errors.iter().take(5).map(String::as_str).collect();
        return Verdict::fail(format!(
            "{what} is not a valid {schema} ({version}): {}{}",
            shown.join("; "),
            if report.errors.len() > 5 {
                format!(" (and {} more)", report.errors.len() - 5)
            } else {
                String::new()
            }
        ));
    }
    if !report.unknown.is_empty() {
        return Verdict::warn(format!(
            "{what} is a valid {schema} ({version}), with fields the schema does not define: {}",
            report.unknown.join(", ")
        ));
    }
    Verdict::pass(format!("{what} is a valid {schema} ({version})"))
}

/// Schema checks on the answers a case reads along its way (a payment request at each step,
/// every page of a walk), besides the answer it judges: an answer that is not valid ends the
/// case as a FAIL, unknown fields are kept for a WARN at its end.
#[derive(Default)]
pub(crate) struct Along {
    unknown: Vec<String>,
}

impl Along {
    /// `Err` (the FAIL) when `answer` is not a valid `schema`.
    pub(crate) fn check(
        &mut self,
        ctx: &Ctx<'_>,
        answer: &Answer,
        schema: &str,
        what: &str,
    ) -> Result<(), Verdict> {
        let verdict = schema_verdict(ctx, answer, schema, what);
        match verdict.outcome {
            crate::outcome::Outcome::Fail => Err(verdict),
            crate::outcome::Outcome::Warn => {
                if !self.unknown.contains(&verdict.reason) {
                    self.unknown.push(verdict.reason);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// `verdict`, turned into a WARN when it passed and an answer along the way had fields
    /// its schema does not define.
    pub(crate) fn finish(self, verdict: Verdict) -> Verdict {
        if verdict.outcome == crate::outcome::Outcome::Pass && !self.unknown.is_empty() {
            Verdict::warn(format!(
                "{}; but {}",
                verdict.reason,
                self.unknown.join("; ")
            ))
        } else {
            verdict
        }
    }
}

/// The verdict on a call made without the TPP's certificate that got no answer: a TLS refusal
/// passes; any other failure (a closed connection, as TLS 1.3 servers refuse a certificate
/// after the client thinks the handshake is done) passes only when the same call with the
/// QWAC (`control`) was answered; a `server` that cannot be reached at all proves nothing,
/// and fails, pointing at the profile's `setting`.
pub(crate) fn unanswered(
    who: &str,
    error: &str,
    control: Option<Result<(), String>>,
    server: &str,
    setting: &str,
) -> Verdict {
    match (NoAnswer::of(error), control) {
        (NoAnswer::Tls, _) => Verdict::pass(format!("refused {who} in the TLS handshake: {error}")),
        (_, Some(Ok(()))) => Verdict::pass(format!(
            "closed the connection of {who} ({error}), and answered the same call with the QWAC"
        )),
        (kind, control) => Verdict::fail(format!(
            "{} ({error}), and the same call with the QWAC got no answer either{}: that is not a \
             refusal of the certificate; check {setting} and the network",
            if kind == NoAnswer::Closed {
                format!("{server} closed the connection of {who}")
            } else {
                format!("could not reach {server}")
            },
            match control {
                Some(Err(c)) => format!(" ({c})"),
                _ => String::new(),
            }
        )),
    }
}
