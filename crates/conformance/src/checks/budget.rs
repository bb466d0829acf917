//! The unattended budget: four calls a day per account and endpoint without the PSU.

use stet_transport::Method;

use super::{Bearer, Ctx, segment};
use crate::outcome::Verdict;

/// STET-BUD-001.
pub(crate) async fn fifth_call(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let account = ctx.session.account().await?;
    let target = format!("accounts/{}/balances", segment(&account.id));
    let mut statuses = Vec::new();
    // Four calls the bank must serve, then the fifth it must refuse.
    for n in 1..=4 {
        let answer = unattended(ctx, &target, n).await?;
        statuses.push(answer.status);
        if answer.status == 429 {
            return Ok(Verdict::warn(format!(
                "unattended call {n} of the day was already refused (429): the budget of this \
                 account was partly spent before the run, so the fifth call cannot be told \
                 apart; run the case again tomorrow"
            )));
        }
        if !answer.is_success() {
            return Ok(Verdict::fail(format!(
                "unattended call {n} answered {}: the first four calls of a day must be served",
                answer.brief()
            )));
        }
    }
    let fifth = unattended(ctx, &target, 5).await?;
    statuses.push(fifth.status);
    let seen = statuses
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Ok(match fifth.status {
        429 => Verdict::pass(format!(
            "calls 1 to 4 served, the fifth refused with 429 ({seen}){}",
            fifth
                .header("retry-after")
                .map(|r| format!(", Retry-After {r}"))
                .unwrap_or_default()
        )),
        s if (200..300).contains(&s) => Verdict::fail(format!(
            "the fifth unattended call within 24 hours was served ({seen}): RTS art. 36(5) \
             allows four"
        )),
        _ => Verdict::warn(format!(
            "the fifth unattended call was refused with {} where 429 is expected ({seen})",
            fifth.brief()
        )),
    })
}

/// `GET target` without `PSU-IP-Address`: the PSU is not there.
async fn unattended(
    ctx: &Ctx<'_>,
    target: &str,
    n: u32,
) -> Result<crate::session::Answer, Verdict> {
    let token = ctx.token(Bearer::Consent, false).await?;
    let mut raw = ctx
        .session
        .build(Method::GET, target, None, Some(&token), false)?;
    ctx.sign(&mut raw)?;
    ctx.send(&format!("GET {target} unattended, call {n}"), &raw)
        .await
}
