//! Mutual TLS: the bank serves only the TPP that presents a QWAC from a trusted issuer.

use stet_transport::Method;

use super::{Bearer, Ctx, refused};
use crate::outcome::Verdict;
use crate::session::Outgoing;

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
    Ok(match result {
        Err(e) => Verdict::pass(format!("refused {what} at the connection: {e}")),
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
