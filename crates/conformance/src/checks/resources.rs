//! Answers: the official schema of the bank's dialect, the headers, the error model.

use stet_transport::Method;

use super::{Bearer, Ctx, schema_verdict, segment};
use crate::outcome::Verdict;
use crate::session::Answer;

async fn get(ctx: &Ctx<'_>, target: &str) -> Result<Answer, Verdict> {
    ctx.call(
        &format!("GET {target}"),
        Method::GET,
        target,
        None,
        Bearer::Consent,
    )
    .await
}

fn judge(ctx: &Ctx<'_>, answer: &Answer, schema: &str, what: &str) -> Verdict {
    match answer.status {
        200 => schema_verdict(ctx, answer, schema, what),
        204 => Verdict::not_applicable(format!("{what} answered 204: nothing to check")),
        501 => Verdict::not_applicable(format!("{what} answered 501: the bank does not offer it")),
        _ => Verdict::fail(format!("{what} answered {}", answer.brief())),
    }
}

/// STET-RES-001.
pub(crate) async fn accounts(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let answer = get(ctx, "accounts").await?;
    Ok(judge(ctx, &answer, "HalAccounts", "GET accounts"))
}

/// STET-RES-002.
pub(crate) async fn balances(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let account = ctx.session.account().await?;
    let target = format!("accounts/{}/balances", segment(&account.id));
    let answer = get(ctx, &target).await?;
    Ok(judge(ctx, &answer, "HalBalances", &format!("GET {target}")))
}

/// STET-RES-003.
pub(crate) async fn transactions(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let account = ctx.session.account().await?;
    let target = format!("accounts/{}/transactions", segment(&account.id));
    let answer = get(ctx, &target).await?;
    Ok(judge(
        ctx,
        &answer,
        "HalTransactions",
        &format!("GET {target}"),
    ))
}

/// STET-RES-004.
pub(crate) async fn identity(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let answer = get(ctx, "end-user-identity").await?;
    Ok(judge(
        ctx,
        &answer,
        "HalEndUserIdentity",
        "GET end-user-identity",
    ))
}

/// STET-RES-005.
pub(crate) async fn beneficiaries(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let answer = get(ctx, "trusted-beneficiaries").await?;
    Ok(judge(
        ctx,
        &answer,
        "HalBeneficiaries",
        "GET trusted-beneficiaries",
    ))
}

/// STET-RES-006.
pub(crate) async fn content_type(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let answer = get(ctx, "accounts").await?;
    if !answer.is_success() {
        return Ok(Verdict::fail(format!(
            "GET accounts answered {}",
            answer.brief()
        )));
    }
    let Some(value) = answer.header("content-type") else {
        return Ok(Verdict::fail("GET accounts answered without Content-Type"));
    };
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Ok(match media.as_str() {
        "application/hal+json" => Verdict::pass(format!("Content-Type: {value}")),
        "application/json" => Verdict::pass(format!(
            "Content-Type: {value} (STET declares application/hal+json; JSON clients read both)"
        )),
        _ => Verdict::fail(format!(
            "GET accounts answered Content-Type `{value}`, not application/hal+json"
        )),
    })
}

/// STET-RES-007.
pub(crate) async fn request_id_echoed(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let token = ctx.token(Bearer::Consent, false).await?;
    let mut raw = ctx.build(Method::GET, "accounts", None, Some(&token))?;
    ctx.sign(&mut raw)?;
    let sent = raw.message.header("x-request-id").unwrap_or_default();
    let answer = ctx.send("GET accounts (X-Request-ID)", &raw).await?;
    Ok(match answer.header("x-request-id") {
        Some(back) if back == sent => Verdict::pass(format!("X-Request-ID {sent} came back")),
        Some(back) => Verdict::fail(format!(
            "X-Request-ID came back as `{back}`, not as sent (`{sent}`)"
        )),
        None => Verdict::fail(format!(
            "the answer ({}) has no X-Request-ID: the request cannot be traced at the bank",
            answer.status
        )),
    })
}

/// STET-RES-008.
pub(crate) async fn error_model(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let target = format!(
        "accounts/{}/balances",
        segment(&format!(
            "STET-CONFORMANCE-NO-SUCH-ACCOUNT-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
    );
    let answer = get(ctx, &target).await?;
    if answer.is_success() {
        return Ok(Verdict::fail(format!(
            "GET {target} (an account that does not exist) answered {}",
            answer.brief()
        )));
    }
    Ok(
        match crate::schema::error_model(ctx.dialect(), answer.status, &answer.body) {
            Ok(()) => Verdict::pass(format!(
                "an unknown account is HTTP {} in the error model",
                answer.status
            )),
            Err(why) => Verdict::fail(format!(
                "an unknown account is HTTP {}, but {why}",
                answer.status
            )),
        },
    )
}
