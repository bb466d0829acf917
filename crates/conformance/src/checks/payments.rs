//! Payment requests: creation, the PSU's approval, confirmation, status, cancellation.

use serde_json::Value;
use stet_transport::{Method, Token};
use url::Url;

use super::oauth::payment_body;
use super::{Along, Bearer, Ctx, refused, segment};
use crate::outcome::Verdict;
use crate::session::Answer;

/// A payment request the bank created.
struct Created {
    answer: Answer,
    id: Option<String>,
    approval: Option<Url>,
}

async fn create(ctx: &Ctx<'_>) -> Result<Created, Verdict> {
    let account = ctx.session.account().await?;
    let body = payment_body(ctx, account.iban.as_deref())?;
    let answer = ctx
        .call(
            "POST payment-requests",
            Method::POST,
            "payment-requests",
            Some(body),
            Bearer::Pisp,
        )
        .await?;
    let id = answer.header("location").and_then(|l| {
        let path = l.split(['?', '#']).next()?;
        let last = path.trim_end_matches('/').rsplit('/').next()?;
        (!last.is_empty()).then(|| last.to_owned())
    });
    let approval = answer
        .json()
        .and_then(|j| {
            j.pointer("/_links/consentApproval/href")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .and_then(|href| ctx.session.transport().api_base().join(&href).ok());
    Ok(Created {
        answer,
        id,
        approval,
    })
}

/// A created payment request's id and approval link, or the failure that prevents going on.
fn usable(created: &Created) -> Result<(String, Url), Verdict> {
    if !created.answer.is_success() {
        return Err(Verdict::fail(format!(
            "creating a payment request answered {}",
            created.answer.brief()
        )));
    }
    let id = created.id.clone().ok_or_else(|| {
        Verdict::fail("the created payment request came without a Location header to read it at")
    })?;
    let approval = created.approval.clone().ok_or_else(|| {
        Verdict::fail("the created payment request came without _links.consentApproval")
    })?;
    Ok((id, approval))
}

/// The official schema of a payment request as read or confirmed.
const PAYMENT: &str = "HalPaymentRequest";

/// The official schema of the answer to a payment request's creation, in the bank's dialect.
fn creation_schema(ctx: &Ctx<'_>) -> &'static str {
    match ctx.dialect() {
        stet_client::bank::Dialect::V1_4 => "HalPaymentRequestCreation",
        _ => "HalAuthenticationRequest",
    }
}

/// The payment request's status, read with `GET /payment-requests/{id}`, whose answer is
/// checked against the dialect's schema on the way.
async fn status(ctx: &Ctx<'_>, id: &str, along: &mut Along) -> Result<String, Verdict> {
    let target = format!("payment-requests/{}", segment(id));
    let answer = ctx
        .call(
            &format!("GET {target}"),
            Method::GET,
            &target,
            None,
            Bearer::Pisp,
        )
        .await?;
    if !answer.is_success() {
        return Err(Verdict::fail(format!(
            "GET {target} answered {}",
            answer.brief()
        )));
    }
    along.check(ctx, &answer, PAYMENT, &format!("GET {target}"))?;
    status_in(&answer).ok_or_else(|| {
        Verdict::fail(format!(
            "GET {target} answered no paymentRequest.paymentInformationStatus"
        ))
    })
}

async fn approve(ctx: &Ctx<'_>, at: &Url) -> Result<Token, Verdict> {
    ctx.session.approval_possible()?;
    let scopes = vec![ctx.bank().scopes.pisp.clone()];
    ctx.session
        .approval(&ctx.log, &scopes, Some(at))
        .await
        .map_err(|e| Verdict::skip("approval", format!("the PSU's approval failed: {e}")))
}

/// `POST …/confirmation` (or the bank's path) with `token`; `None` when the bank has no
/// confirmation step.
async fn confirm(
    ctx: &Ctx<'_>,
    id: &str,
    token: &Token,
    purpose: &str,
) -> Result<Option<Answer>, Verdict> {
    let Some(step) = ctx.bank().confirmation_path.segment() else {
        return Ok(None);
    };
    let target = format!("payment-requests/{}{step}", segment(id));
    let mut raw = ctx.build(Method::POST, &target, Some(b"{}".to_vec()), Some(token))?;
    ctx.sign(&mut raw)?;
    Ok(Some(ctx.send(purpose, &raw).await?))
}

/// Where a status stands in the lifecycle: 0 received, 1 pending, 2 accepted and in
/// progress, 3 final.
fn rank(status: &str) -> Option<u8> {
    Some(match status {
        "RCVD" => 0,
        "PDNG" | "ACCO" => 1,
        "ACTC" | "ACCP" | "ACSP" | "ACWC" | "ACWP" | "PART" | "PATC" => 2,
        "ACSC" | "RJCT" | "CANC" => 3,
        _ => return None,
    })
}

fn status_in(answer: &Answer) -> Option<String> {
    answer.json().and_then(|j| {
        j.pointer("/paymentRequest/paymentInformationStatus")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

/// STET-PIS-001.
pub(crate) async fn consent_approval(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let created = create(ctx).await?;
    let answer = &created.answer;
    if !answer.is_success() {
        return Ok(Verdict::fail(format!(
            "POST payment-requests answered {}",
            answer.brief()
        )));
    }
    let Some(approval) = &created.approval else {
        return Ok(Verdict::fail(
            "the 201 has no _links.consentApproval: the TPP cannot send the PSU to approve",
        ));
    };
    if created.id.is_none() {
        return Ok(Verdict::fail(
            "the answer has no Location header for the new payment request",
        ));
    }
    if approval.scheme() != "https" {
        return Ok(Verdict::fail(format!(
            "_links.consentApproval is {approval}, not https"
        )));
    }
    let mut along = Along::default();
    along.check(ctx, answer, creation_schema(ctx), "POST payment-requests")?;
    Ok(along.finish(if answer.status == 201 {
        Verdict::pass(format!(
            "201 with Location and consentApproval ({})",
            approval.origin().ascii_serialization()
        ))
    } else {
        Verdict::warn(format!(
            "HTTP {} with Location and consentApproval, where STET answers 201 Created",
            answer.status
        ))
    }))
}

/// STET-PIS-002.
pub(crate) async fn lifecycle(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    ctx.session.approval_possible()?;
    let created = create(ctx).await?;
    let (id, at) = usable(&created)?;
    let mut along = Along::default();
    let mut seen: Vec<String> = vec![status(ctx, &id, &mut along).await?];
    let token = approve(ctx, &at).await?;
    if let Some(answer) = confirm(ctx, &id, &token, "confirm after approval").await? {
        if !answer.is_success() {
            return Ok(Verdict::fail(format!(
                "the approved payment request's confirmation answered {}",
                answer.brief()
            )));
        }
        if let Some(s) = status_in(&answer) {
            seen.push(s);
        }
    }
    seen.push(status(ctx, &id, &mut along).await?);
    seen.push(status(ctx, &id, &mut along).await?);
    let path = seen.join(" → ");
    if seen[0] != "RCVD" && seen[0] != "PDNG" {
        return Ok(Verdict::fail(format!(
            "a new payment request reads as {} before the PSU approved it ({path})",
            seen[0]
        )));
    }
    let mut last = 0;
    for s in &seen {
        let Some(r) = rank(s) else {
            return Ok(Verdict::fail(format!(
                "status `{s}` is not a payment status of STET ({path})"
            )));
        };
        if r < last {
            return Ok(Verdict::fail(format!(
                "the status went back to {s} after moving on ({path})"
            )));
        }
        last = r;
    }
    if last < 2 && ctx.bank().confirmation_path.segment().is_some() {
        return Ok(Verdict::fail(format!(
            "after approval and confirmation the status did not move on ({path})"
        )));
    }
    Ok(along.finish(Verdict::pass(path)))
}

/// STET-PIS-003.
pub(crate) async fn confirmation(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    if ctx.bank().confirmation_path.segment().is_none() {
        return Ok(Verdict::not_applicable(
            "the bank's profile has no confirmation step (confirmation_path = none)",
        ));
    }
    ctx.session.approval_possible()?;
    let created = create(ctx).await?;
    let (id, at) = usable(&created)?;
    let cc = ctx.token(Bearer::Pisp, false).await?;
    let early = confirm(ctx, &id, &cc, "confirm before the PSU approved")
        .await?
        .ok_or_else(|| Verdict::fail("no confirmation path"))?;
    let before = refused(
        ctx,
        &early,
        "the confirmation of a payment request the PSU had not approved",
        &[400, 401, 403, 409],
        false,
    );
    if before.outcome == crate::outcome::Outcome::Fail {
        return Ok(before);
    }
    let token = approve(ctx, &at).await?;
    let answer = confirm(ctx, &id, &token, "confirm after approval")
        .await?
        .ok_or_else(|| Verdict::fail("no confirmation path"))?;
    if !answer.is_success() {
        return Ok(Verdict::fail(format!(
            "the confirmation after the PSU's approval answered {}",
            answer.brief()
        )));
    }
    let mut along = Along::default();
    along.check(ctx, &answer, PAYMENT, "the confirmation's answer")?;
    let status = status_in(&answer).unwrap_or_default();
    if rank(&status).is_none_or(|r| r < 1) {
        return Ok(Verdict::fail(format!(
            "the confirmation answered status `{status}`, not a status after RCVD"
        )));
    }
    Ok(along.finish(Verdict::pass(format!(
        "{}; after approval, confirmed: {status}",
        before.reason
    ))))
}

/// STET-PIS-004.
pub(crate) async fn cancellation(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let created = create(ctx).await?;
    if !created.answer.is_success() {
        return Ok(Verdict::fail(format!(
            "creating a payment request answered {}",
            created.answer.brief()
        )));
    }
    let id = created
        .id
        .clone()
        .ok_or_else(|| Verdict::fail("the created payment request came without a Location"))?;
    let target = format!("payment-requests/{}", segment(&id));
    let read = ctx
        .call(
            &format!("GET {target}"),
            Method::GET,
            &target,
            None,
            Bearer::Pisp,
        )
        .await?;
    let mut along = Along::default();
    if read.is_success() {
        along.check(ctx, &read, PAYMENT, &format!("GET {target}"))?;
    }
    let mut request = read
        .json()
        .and_then(|j| j.get("paymentRequest").cloned())
        .ok_or_else(|| Verdict::fail(format!("GET {target} answered {}", read.brief())))?;
    // 1.4.0.47 has no CANC: a cancellation is RJCT with the reason DS02 there.
    let cancelled = match ctx.dialect() {
        stet_client::bank::Dialect::V1_4 => "RJCT",
        _ => "CANC",
    };
    request["paymentInformationStatus"] = Value::String(cancelled.into());
    request["statusReasonInformation"] = Value::String("DS02".into());
    let body = serde_json::to_vec(&request).map_err(|e| Verdict::fail(e.to_string()))?;
    let answer = ctx
        .call(
            "PUT payment-requests (cancel, DS02)",
            Method::PUT,
            &target,
            Some(body),
            Bearer::Pisp,
        )
        .await?;
    if !answer.is_success() {
        return Ok(Verdict::fail(format!(
            "the cancellation answered {}",
            answer.brief()
        )));
    }
    let after = status(ctx, &id, &mut along).await?;
    Ok(along.finish(if after == cancelled {
        Verdict::pass(format!(
            "cancelled: the payment request reads {cancelled} (DS02)"
        ))
    } else {
        Verdict::fail(format!(
            "the cancellation answered {} but the payment request still reads {after}",
            answer.status
        ))
    }))
}
