//! Mutual TLS: the bank serves only the TPP that presents a QWAC from a trusted issuer.

use stet_transport::Method;

use super::{Bearer, Ctx, refused};
use crate::outcome::Verdict;
use crate::session::{NoAnswer, Outgoing};

/// `GET /accounts`, signed and with the PSU's token, sent through `client`: whatever gets
/// through is the bank's failure to check the certificate.
async fn without_qwac(
    ctx: &Ctx<'_>,
    client: &reqwest::Client,
    purpose: &str,
    what: &str,
) -> Result<Verdict, Verdict> {
    let token = ctx.token(Bearer::Consent, false).await?;
    let mut raw = ctx.build(Method::GET, "accounts", None, Some(&token))?;
    ctx.sign(&mut raw)?;
    let result = ctx
        .session
        .send_through(
            &ctx.log,
            purpose,
            client,
            Outgoing {
                method: raw.message.method(),
                url: &raw.url,
                headers: raw.message.headers(),
                body: raw.message.body(),
            },
        )
        .await;
    let control = match &result {
        Err(e) if NoAnswer::of(e) != NoAnswer::Tls => Some(
            ctx.send("the same request with the QWAC, for comparison", &raw)
                .await
                .map(|_| ())
                .map_err(|v| v.reason),
        ),
        _ => None,
    };
    Ok(match result {
        Err(e) => super::unanswered(what, &e, control, "the bank", "api_base"),
        Ok(answer) => refused(ctx, &answer, what, &[401, 403], false),
    })
}

/// STET-TLS-001.
pub(crate) async fn no_client_certificate(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    without_qwac(
        ctx,
        &ctx.session.plain,
        "GET accounts without a client certificate",
        "a request without a client certificate",
    )
    .await
}

/// STET-TLS-002.
pub(crate) async fn untrusted_client_certificate(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let client = ctx.session.forged.as_ref().map_err(|e| {
        Verdict::fail(format!(
            "could not make a certificate of an untrusted issuer: {e}"
        ))
    })?;
    without_qwac(
        ctx,
        client,
        "GET accounts with a self-signed certificate copying the QWAC's subject",
        "a request with a self-signed certificate that copies the QWAC's subject",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::super::unanswered;
    use crate::outcome::Outcome;

    #[test]
    fn only_a_tls_refusal_or_a_failure_the_qwac_does_not_share_passes() {
        let what = "a request without a client certificate";
        let tls = "client error (SendRequest): connection error: received fatal alert: UnknownCA";
        let closed = "client error (SendRequest): channel closed";
        let refused =
            "client error (Connect): tcp connect error: Connection refused (os error 111)";
        let timeout = "error sending request: operation timed out";
        for (error, control, wanted) in [
            (tls, None, Outcome::Pass),
            (closed, Some(Ok(())), Outcome::Pass),
            (
                closed,
                Some(Err("channel closed".to_owned())),
                Outcome::Fail,
            ),
            (refused, None, Outcome::Fail),
            (refused, Some(Err(refused.to_owned())), Outcome::Fail),
            (timeout, Some(Err(timeout.to_owned())), Outcome::Fail),
            // Whatever the words, a failure the QWAC's request does not share is the
            // certificate's.
            (timeout, Some(Ok(())), Outcome::Pass),
        ] {
            let v = unanswered(what, error, control.clone(), "the bank", "api_base");
            assert_eq!(v.outcome, wanted, "{error} / {control:?}: {}", v.reason);
        }
    }
}
