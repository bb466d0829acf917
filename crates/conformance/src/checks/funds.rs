//! Funds confirmations (CBPII).

use stet_transport::Method;

use super::{Bearer, Ctx, schema_verdict};
use crate::outcome::Verdict;

/// STET-CBP-001.
pub(crate) async fn answers(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let account = ctx.session.account().await?;
    let iban = account.iban.ok_or_else(|| {
        Verdict::skip(
            "account",
            "the PSU's first account has no IBAN to check funds on",
        )
    })?;
    let amount = "10.00".parse().map_err(|_| Verdict::fail("amount"))?;
    let body = ctx.body(&stet_client::funds_confirmation_request(
        iban, amount, "EUR",
    ))?;
    let answer = ctx
        .call(
            "POST funds-confirmations",
            Method::POST,
            "funds-confirmations",
            Some(body),
            Bearer::Cbpii,
        )
        .await?;
    if answer.status != 200 {
        return Ok(Verdict::fail(format!(
            "POST funds-confirmations answered {}",
            answer.brief()
        )));
    }
    let verdict = schema_verdict(
        ctx,
        &answer,
        "HalPaymentCoverageReport",
        "the funds confirmation",
    );
    if verdict.outcome == crate::outcome::Outcome::Fail {
        return Ok(verdict);
    }
    let result = answer
        .json()
        .and_then(|j| j.get("result").and_then(|r| r.as_bool()));
    Ok(match result {
        Some(r) => Verdict {
            reason: format!("{} (result: {r})", verdict.reason),
            ..verdict
        },
        None => Verdict::fail("the funds confirmation has no boolean result"),
    })
}
