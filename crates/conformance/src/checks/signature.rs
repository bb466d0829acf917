//! HTTP signatures and Digest: the bank refuses every request whose signature does not prove
//! that the TPP sent exactly this.

use std::time::{Duration, SystemTime};

use stet_httpsig::SignatureParams;
use stet_transport::{Method, RawRequest};

use super::{Bearer, Ctx, refused};
use crate::outcome::Verdict;

/// `GET /accounts` with the PSU's token, attended, not signed yet.
async fn accounts_request(ctx: &Ctx<'_>) -> Result<RawRequest, Verdict> {
    let token = ctx.token(Bearer::Consent, false).await?;
    ctx.build(Method::GET, "accounts", None, Some(&token))
}

/// A funds-confirmation request with the CBPII token, not signed yet, and another body for
/// the same request.
async fn funds_request(ctx: &Ctx<'_>) -> Result<(RawRequest, Vec<u8>), Verdict> {
    let account = ctx.session.account().await?;
    let token = ctx.token(Bearer::Cbpii, false).await?;
    let iban = account.iban.clone().ok_or_else(|| {
        Verdict::skip(
            "account",
            "the PSU's first account has no IBAN to check funds on",
        )
    })?;
    let request = |amount: &str| -> Result<Vec<u8>, Verdict> {
        let amount = amount.parse().map_err(|_| Verdict::fail("amount"))?;
        ctx.body(&stet_client::funds_confirmation_request(
            iban.clone(),
            amount,
            "EUR",
        ))
    };
    let raw = ctx.build(
        Method::POST,
        "funds-confirmations",
        Some(request("10.00")?),
        Some(&token),
    )?;
    Ok((raw, request("99999.00")?))
}

fn must_refuse(ctx: &Ctx<'_>, answer: &crate::session::Answer, what: &str) -> Verdict {
    refused(ctx, answer, what, &[400, 401], true)
}

/// STET-SIG-001.
pub(crate) async fn missing(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let raw = accounts_request(ctx).await?;
    let answer = ctx.send("GET accounts without Signature", &raw).await?;
    Ok(must_refuse(
        ctx,
        &answer,
        "a request without a Signature header",
    ))
}

/// STET-SIG-002.
pub(crate) async fn tampered(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let mut raw = accounts_request(ctx).await?;
    ctx.sign(&mut raw)?;
    let header = raw.message.header("signature").unwrap_or_default();
    let mut params = SignatureParams::parse(&header)
        .map_err(|e| Verdict::fail(format!("cannot read our own Signature header: {e}")))?;
    // One bit of the signature flipped: the header parses, the keyId is known, only the
    // cryptography can tell.
    if let Some(byte) = params.signature.get_mut(10) {
        *byte ^= 0x01;
    }
    raw.message
        .set_header("Signature", params.to_header_value());
    let answer = ctx
        .send("GET accounts with one bit of the signature flipped", &raw)
        .await?;
    Ok(must_refuse(ctx, &answer, "a tampered signature"))
}

/// STET-SIG-003.
pub(crate) async fn digest_mismatch(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let (mut raw, other) = funds_request(ctx).await?;
    // Signed over the first body, Digest and all; then another body goes with that Digest.
    ctx.sign(&mut raw)?;
    raw.message.set_body(other);
    let answer = ctx
        .send(
            "POST funds-confirmations with a Digest of another body",
            &raw,
        )
        .await?;
    Ok(must_refuse(
        ctx,
        &answer,
        "a Digest that does not match the body",
    ))
}

/// STET-SIG-004.
pub(crate) async fn body_changed(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let (mut raw, other) = funds_request(ctx).await?;
    ctx.sign(&mut raw)?;
    // What someone in the middle would do: a new body, its Digest recomputed; only the
    // signature (over the old Digest) can tell.
    raw.message
        .set_header("Digest", stet_httpsig::digest_header_value(&other));
    raw.message.set_body(other);
    let answer = ctx
        .send(
            "POST funds-confirmations, body changed after signing and Digest recomputed",
            &raw,
        )
        .await?;
    Ok(must_refuse(ctx, &answer, "a body changed after signing"))
}

/// STET-SIG-005.
pub(crate) async fn stale_date(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let mut raw = accounts_request(ctx).await?;
    let then = SystemTime::now() - Duration::from_secs(3600);
    raw.message
        .set_header("Date", httpdate::fmt_http_date(then));
    let signing = ctx.session.transport().signing_profile().clone();
    ctx.session
        .transport()
        .sign_raw(&mut raw, &signing, then)
        .map_err(|e| Verdict::fail(format!("cannot sign: {e}")))?;
    let answer = ctx
        .send("GET accounts signed with a Date an hour old", &raw)
        .await?;
    Ok(must_refuse(ctx, &answer, "a Date an hour old"))
}

/// STET-SIG-006.
pub(crate) async fn unknown_key_id(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let mut raw = accounts_request(ctx).await?;
    let mut signing = ctx.session.transport().signing_profile().clone();
    signing.key_id = format!(
        "https://unknown.invalid/qsealc/{}.pem",
        uuid::Uuid::new_v4().simple()
    );
    ctx.session
        .transport()
        .sign_raw(&mut raw, &signing, SystemTime::now())
        .map_err(|e| Verdict::fail(format!("cannot sign: {e}")))?;
    let answer = ctx
        .send("GET accounts signed under an unknown keyId", &raw)
        .await?;
    Ok(must_refuse(ctx, &answer, "a keyId it does not know"))
}

/// STET-SIG-007.
pub(crate) async fn header_left_out(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let mut raw = accounts_request(ctx).await?;
    let mut signing = ctx.session.transport().signing_profile().clone();
    let Some(left_out) = ["x-request-id", "(request-target)", "date"]
        .into_iter()
        .find(|h| signing.headers.iter().any(|s| s == h))
    else {
        return Ok(Verdict::not_applicable(
            "the bank's signing profile signs none of x-request-id, (request-target), date",
        ));
    };
    signing.headers.retain(|h| h != left_out);
    ctx.session
        .transport()
        .sign_raw(&mut raw, &signing, SystemTime::now())
        .map_err(|e| Verdict::fail(format!("cannot sign: {e}")))?;
    let answer = ctx
        .send(
            &format!("GET accounts signed without `{left_out}` in headers"),
            &raw,
        )
        .await?;
    Ok(must_refuse(
        ctx,
        &answer,
        &format!("a signature that leaves `{left_out}` unsigned"),
    ))
}
