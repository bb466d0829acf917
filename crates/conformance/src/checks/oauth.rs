//! Tokens, `/authorize` and the token endpoint.

use std::time::{Duration, SystemTime};

use stet_client::{CreditTransfer, PaymentRequestBuilder};
use stet_transport::{Method, Secret, Token, unix};

use super::{Bearer, Ctx, refused};
use crate::outcome::Verdict;
use crate::session::{Granted, NoAnswer, oauth_error};

/// `GET /accounts`, signed, attended, with `token` (or none).
async fn accounts_with(
    ctx: &Ctx<'_>,
    token: Option<&Token>,
    purpose: &str,
) -> Result<crate::session::Answer, Verdict> {
    let mut raw = ctx.build(Method::GET, "accounts", None, token)?;
    ctx.sign(&mut raw)?;
    ctx.send(purpose, &raw).await
}

fn bare(access: &str) -> Token {
    Token {
        access_token: Secret::new(access),
        token_type: "Bearer".to_owned(),
        expires_at: None,
        refresh_token: None,
        scopes: Vec::new(),
        obtained_at: unix(SystemTime::now()),
        authenticated_at: None,
    }
}

/// STET-OAU-001.
pub(crate) async fn no_token(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let answer = accounts_with(ctx, None, "GET accounts without Authorization").await?;
    Ok(refused(
        ctx,
        &answer,
        "a request without an access token",
        &[401],
        true,
    ))
}

/// STET-OAU-002.
pub(crate) async fn invalid_token(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let forged = bare(&format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ));
    let answer = accounts_with(
        ctx,
        Some(&forged),
        "GET accounts with a token the bank never issued",
    )
    .await?;
    Ok(refused(
        ctx,
        &answer,
        "an access token it never issued",
        &[401],
        true,
    ))
}

/// STET-OAU-003: a token of this run once it has expired (waiting for it up to the run's
/// `max_wait`), or the one the user gave.
pub(crate) async fn expired_token(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let target = &ctx.session.target;
    let token = match &target.expired_token {
        Some(given) => bare(given.expose()),
        None => {
            // The consent token issued first in this run (obtaining it if no case did).
            ctx.token(Bearer::Consent, false).await?;
            let first = ctx.session.first_consent().ok_or_else(|| {
                Verdict::skip(
                    "an expired access token",
                    "no consent token was issued in this run",
                )
            })?;
            let Some(expires_at) = first.expires_at else {
                return Err(Verdict::skip(
                    "an expired access token",
                    "the bank gave no expires_in with its tokens: give an expired one in \
                     STET_CONFORMANCE_EXPIRED_TOKEN",
                ));
            };
            // A second after the expiry, so that the bank's clock has passed it too.
            let now = unix(SystemTime::now());
            let wait = Duration::from_secs((expires_at + 1).saturating_sub(now));
            if wait > target.max_wait {
                return Err(Verdict::skip(
                    "an expired access token",
                    format!(
                        "the consent token expires in {} s, more than the {} s this run may \
                         wait (--max-wait): give an expired token in \
                         STET_CONFORMANCE_EXPIRED_TOKEN",
                        wait.as_secs(),
                        target.max_wait.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            first
        }
    };
    let answer = accounts_with(ctx, Some(&token), "GET accounts with an expired token").await?;
    Ok(refused(
        ctx,
        &answer,
        "an expired access token",
        &[401],
        true,
    ))
}

/// A payment request the checks may send: one euro from the PSU's account to a fixed payee.
pub(crate) fn payment_body(ctx: &Ctx<'_>, debtor: Option<&str>) -> Result<Vec<u8>, Verdict> {
    let mut builder = PaymentRequestBuilder::sepa_credit_transfer("stet conformance").transfer(
        CreditTransfer::eur(
            "Conformance Payee",
            "FR7630006000011234567890189",
            "1.00".parse().map_err(|_| Verdict::fail("amount"))?,
            "stet conformance",
        ),
    );
    if let Some(iban) = debtor {
        builder = builder.debtor_iban(iban);
    }
    if let Some(redirect) = &ctx.session.target.profile.redirect_uri {
        builder = builder.report_urls(redirect.to_string(), redirect.to_string());
    }
    let request = builder
        .build(ctx.bank())
        .map_err(|e| Verdict::fail(format!("cannot build a payment request: {e}")))?;
    ctx.body(&request)
}

/// STET-OAU-004.
pub(crate) async fn wrong_scope(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let account = ctx.session.account().await?;
    let token = ctx.token(Bearer::Consent, false).await?;
    let body = payment_body(ctx, account.iban.as_deref())?;
    let mut raw = ctx.build(Method::POST, "payment-requests", Some(body), Some(&token))?;
    ctx.sign(&mut raw)?;
    let answer = ctx
        .send("POST payment-requests with the PSU's AISP token", &raw)
        .await?;
    Ok(refused(
        ctx,
        &answer,
        "a payment request carrying an AISP token",
        &[401, 403],
        true,
    ))
}

/// A headless `/authorize` for the AISP scope (with a PKCE challenge or without), and where
/// it redirected.
async fn authorize(
    ctx: &Ctx<'_>,
    purpose: &str,
    pkce: bool,
) -> Result<(crate::session::Authorize, crate::session::Redirected), Verdict> {
    ctx.session.headless()?;
    let scopes = vec![ctx.bank().scopes.aisp.clone()];
    let authorize = ctx
        .session
        .authorize_request(&scopes, None, pkce)
        .map_err(Verdict::fail)?;
    let redirected = ctx
        .session
        .follow(&ctx.log, purpose, &authorize)
        .await
        .map_err(|e| Verdict::fail(format!("/authorize did not answer: {e}")))?;
    Ok((authorize, redirected))
}

/// STET-OAU-005.
pub(crate) async fn state_returned(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let (authorize, redirected) = authorize(ctx, "authorize with a state", true).await?;
    if redirected.location.is_none() {
        return Ok(Verdict::fail(format!(
            "/authorize answered HTTP {} without redirecting",
            redirected.status
        )));
    }
    Ok(match redirected.param("state") {
        Some(s) if s == authorize.state => {
            Verdict::pass("the redirect carries the state the client sent, unchanged")
        }
        Some(_) => Verdict::fail("the redirect carries another state than the client sent"),
        None => Verdict::fail(
            "the redirect carries no state: the client cannot tell its own authorization from a \
             forged one (RFC 6749 §10.12)",
        ),
    })
}

/// STET-OAU-006.
pub(crate) async fn pkce_required(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let (_, redirected) = authorize(ctx, "authorize without code_challenge", false).await?;
    Ok(pkce_verdict(&redirected))
}

/// A refusal is an OAuth error (RFC 6749 §4.1.2.1): a redirect with `error`, or, when the
/// bank does not redirect, an error answer with `error`. No code but no refusal either (a
/// 500, a 404, a page) is not PKCE enforced: it fails.
fn pkce_verdict(redirected: &crate::session::Redirected) -> Verdict {
    if redirected.param("code").is_some() {
        return Verdict::fail(
            "/authorize gave a code to a request without a PKCE code_challenge: a stolen code \
             can then be exchanged by anyone holding the client's credentials",
        );
    }
    if let Some(e) = redirected.param("error") {
        return Verdict::pass(format!("/authorize refused it with error `{e}`"));
    }
    match (redirected.status, &redirected.error) {
        (400..=499, Some(e)) => Verdict::pass(format!(
            "/authorize refused it with HTTP {} `{e}`",
            redirected.status
        )),
        (status, _) => Verdict::fail(format!(
            "/authorize answered HTTP {status} without a code, but not with a refusal: no \
             redirect with `error` and no OAuth error answer (RFC 6749 §4.1.2.1), so nothing \
             shows that it enforces PKCE"
        )),
    }
}

/// A code from a headless `/authorize`, with the request that got it.
async fn code(
    ctx: &Ctx<'_>,
    purpose: &str,
) -> Result<(crate::session::Authorize, String), Verdict> {
    let (authorize, redirected) = authorize(ctx, purpose, true).await.map_err(|v| {
        if v.outcome == crate::outcome::Outcome::Skip {
            v
        } else {
            Verdict::skip("headless", v.reason)
        }
    })?;
    let code = redirected.param("code").ok_or_else(|| {
        Verdict::skip(
            "headless",
            format!(
                "/authorize answered HTTP {} without a code",
                redirected.status
            ),
        )
    })?;
    Ok((authorize, code))
}

fn oauth_refused(answer: &crate::session::Answer, what: &str) -> Verdict {
    let error = answer
        .json()
        .and_then(|j| j.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    match (answer.status, error.as_deref()) {
        (400, Some("invalid_grant")) => Verdict::pass(format!("refused {what}: invalid_grant")),
        (s, Some(e)) if (400..500).contains(&s) => Verdict::warn(format!(
            "refused {what} with HTTP {s} `{e}` where RFC 6749 §5.2 answers 400 invalid_grant"
        )),
        _ => Verdict::fail(format!(
            "the token endpoint answered {what} with {} instead of 400 invalid_grant",
            answer.brief()
        )),
    }
}

/// STET-OAU-007.
pub(crate) async fn pkce_verifier_checked(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let (authorize, code) = code(ctx, "authorize (for a code)").await?;
    let scopes = vec![ctx.bank().scopes.aisp.clone()];
    let wrong = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let granted = ctx
        .session
        .exchange(
            &ctx.log,
            "token with a wrong code_verifier",
            &authorize,
            &code,
            &wrong,
            &scopes,
        )
        .await
        .map_err(|e| Verdict::fail(format!("the token endpoint did not answer: {e}")))?;
    Ok(match granted {
        Granted::Token(_) => Verdict::fail(
            "the token endpoint issued a token for a code_verifier that does not match the \
             code_challenge",
        ),
        Granted::Refused(answer) => oauth_refused(&answer, "a wrong code_verifier"),
    })
}

/// STET-OAU-008.
pub(crate) async fn token_endpoint_needs_certificate(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    // Without a token endpoint or a client id there is nothing to send: that is the
    // profile's gap, not a refusal by the bank.
    if let Some(missing) = [ctx.session.token_url().err(), ctx.session.client_id().err()]
        .into_iter()
        .flatten()
        .next()
    {
        return Err(Verdict::skip("profile", missing));
    }
    let scope = ctx.bank().scopes.pisp.clone();
    let call = |purpose: &'static str, without_certificate: bool| {
        ctx.session.token_call(
            &ctx.log,
            purpose,
            vec![
                ("grant_type", "client_credentials".to_owned()),
                ("scope", scope.clone()),
            ],
            without_certificate,
            std::slice::from_ref(&scope),
        )
    };
    let result = call(
        "token (client credentials) without a client certificate",
        true,
    )
    .await;
    // A failure other than a TLS refusal (a closed connection, as TLS 1.3 servers refuse a
    // certificate after the client thinks the handshake is done) is the certificate's only
    // if the same call with the QWAC gets an answer.
    let control = match &result {
        Err(e) if NoAnswer::of(e) != NoAnswer::Tls => Some(
            call(
                "token (client credentials) with the QWAC, for comparison",
                false,
            )
            .await
            .map(|_| ()),
        ),
        _ => None,
    };
    Ok(certificate_verdict(result, control))
}

/// The verdict of STET-OAU-008 on the token endpoint's answer to a client without its
/// certificate (and, when the connection was closed, on the same call with the QWAC).
fn certificate_verdict(
    result: Result<Granted, String>,
    control: Option<Result<(), String>>,
) -> Verdict {
    match result {
        Err(e) => super::unanswered(
            "a client without its certificate",
            &e,
            control,
            "the token endpoint",
            "token_url",
        ),
        Ok(Granted::Token(_)) => Verdict::fail(
            "the token endpoint issued a token to a client that presented no certificate (only \
             its client_id)",
        ),
        Ok(Granted::Refused(answer)) if answer.status >= 500 => Verdict::fail(format!(
            "the token endpoint failed with {} instead of refusing",
            answer.brief()
        )),
        Ok(Granted::Refused(answer)) => match oauth_error(&answer) {
            Some(e) if (400..500).contains(&answer.status) => Verdict::pass(format!(
                "refused a client without its certificate: HTTP {} `{e}`",
                answer.status
            )),
            _ => Verdict::fail(format!(
                "the token endpoint answered a client without its certificate with {}, not an \
                 OAuth error answer (RFC 6749 §5.2: 400 or 401 with a JSON `error`, such as \
                 invalid_client)",
                answer.brief()
            )),
        },
    }
}

/// STET-OAU-009.
pub(crate) async fn code_single_use(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let (authorize, code) = code(ctx, "authorize (for a code)").await?;
    let scopes = vec![ctx.bank().scopes.aisp.clone()];
    let exchange = |purpose: &'static str| {
        ctx.session.exchange(
            &ctx.log,
            purpose,
            &authorize,
            &code,
            &authorize.verifier,
            &scopes,
        )
    };
    match exchange("token (the code, first time)").await {
        Ok(Granted::Token(_)) => {}
        Ok(Granted::Refused(a)) => {
            return Err(Verdict::skip(
                "headless",
                format!("the first exchange of the code was refused: {}", a.brief()),
            ));
        }
        Err(e) => {
            return Err(Verdict::fail(format!(
                "the token endpoint did not answer: {e}"
            )));
        }
    }
    let second = exchange("token (the same code, again)")
        .await
        .map_err(|e| Verdict::fail(format!("the token endpoint did not answer: {e}")))?;
    Ok(match second {
        Granted::Token(_) => {
            Verdict::fail("the token endpoint exchanged the same authorization code twice")
        }
        Granted::Refused(answer) => oauth_refused(&answer, "a code already used"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::session::{Answer, Redirected};

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn redirected(status: u16, location: Option<&str>, body: &str) -> Redirected {
        Redirected {
            status,
            location: location.map(|l| l.parse().unwrap()),
            error: oauth_error(&answer(status, body)),
        }
    }

    #[test]
    fn pkce_passes_only_on_an_oauth_refusal() {
        let cases = [
            (
                redirected(302, Some("https://tpp/cb?code=abc&state=s"), ""),
                Outcome::Fail,
            ),
            (
                redirected(302, Some("https://tpp/cb?error=invalid_request"), ""),
                Outcome::Pass,
            ),
            (
                redirected(400, None, r#"{"error":"invalid_request"}"#),
                Outcome::Pass,
            ),
            // No code, but no refusal either: a crash, a missing page, a refusal in no form
            // OAuth knows, a redirect that says nothing.
            (
                redirected(500, None, r#"{"error":"server_error"}"#),
                Outcome::Fail,
            ),
            (redirected(404, None, "Not Found"), Outcome::Fail),
            (redirected(400, None, r#"{"message":"bad"}"#), Outcome::Fail),
            (
                redirected(302, Some("https://tpp/cb?state=s"), ""),
                Outcome::Fail,
            ),
            (redirected(200, None, "<html>log in</html>"), Outcome::Fail),
        ];
        for (r, wanted) in cases {
            let v = pkce_verdict(&r);
            assert_eq!(v.outcome, wanted, "{r:?}: {}", v.reason);
        }
    }

    #[test]
    fn the_token_endpoint_passes_only_on_a_tls_or_oauth_refusal() {
        let tls = "error sending request: client error (Connect): received fatal alert: \
                   CertificateRequired";
        let closed = "error sending request: client error (SendRequest): channel closed";
        let refused = "error sending request: client error (Connect): tcp connect error: \
                       Connection refused (os error 111)";
        let dns = "error sending request: client error (Connect): dns error: failed to lookup \
                   address information: Name or service not known";
        /// What the call without a certificate got, what the control call got, the verdict.
        type Case = (Result<Granted, String>, Option<Result<(), String>>, Outcome);
        let cases: Vec<Case> = vec![
            (Err(tls.into()), None, Outcome::Pass),
            (Err(closed.into()), Some(Ok(())), Outcome::Pass),
            (Err(closed.into()), Some(Err(closed.into())), Outcome::Fail),
            (Err(closed.into()), None, Outcome::Fail),
            (
                Err(refused.into()),
                Some(Err(refused.into())),
                Outcome::Fail,
            ),
            (Err(dns.into()), Some(Err(dns.into())), Outcome::Fail),
            (
                Ok(Granted::Refused(answer(
                    401,
                    r#"{"error":"invalid_client"}"#,
                ))),
                None,
                Outcome::Pass,
            ),
            (
                Ok(Granted::Refused(answer(
                    401,
                    r#"{"status":401,"message":"no"}"#,
                ))),
                None,
                Outcome::Fail,
            ),
            (
                Ok(Granted::Refused(answer(404, "Not Found"))),
                None,
                Outcome::Fail,
            ),
            (
                Ok(Granted::Refused(answer(500, r#"{"error":"server_error"}"#))),
                None,
                Outcome::Fail,
            ),
        ];
        for (result, control, wanted) in cases {
            let shown = format!("{result:?} / {control:?}");
            let v = certificate_verdict(result, control);
            assert_eq!(v.outcome, wanted, "{shown}: {}", v.reason);
        }
    }
}
