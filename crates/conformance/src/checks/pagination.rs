//! `_links` paging and the date bounds of transaction lists.

use serde_json::Value;
use stet_transport::{Method, origin};
use url::Url;

use super::{Bearer, Ctx, refused, schema_verdict, segment};
use crate::outcome::{Outcome, Verdict};

/// The most pages a walk reads.
const MAX_PAGES: usize = 500;

/// One page read.
struct PageSeen {
    number: usize,
    has_self: bool,
}

/// How a walk ended.
enum End {
    /// No `next`: the last page.
    Last,
    /// A page did not answer 200 with a list.
    Error(String),
    /// `next` led back to a page already read.
    Loop { href: String, back_to: usize },
    /// `next` led to another origin (not followed).
    Foreign(String),
    /// `next` could not be read as a link.
    Bad(String),
    /// [`MAX_PAGES`] read and still a `next`.
    Limit,
}

struct Walk {
    pages: Vec<PageSeen>,
    items: usize,
    end: End,
    /// The first page after the first that is not a valid `HalTransactions` (the first page
    /// is STET-RES-003's), or one with fields the schema does not define: its verdict.
    later_schema: Option<Verdict>,
}

/// Reads the first account's transactions page by page, following `_links.next`.
async fn walk(ctx: &Ctx<'_>) -> Result<Option<Walk>, Verdict> {
    let account = ctx.session.account().await?;
    let api_base = ctx.session.transport().api_base().clone();
    let first = format!("accounts/{}/transactions", segment(&account.id));
    let mut url = api_base
        .join(&first)
        .map_err(|e| Verdict::fail(format!("cannot make the URL of {first}: {e}")))?;
    let mut visited: Vec<String> = Vec::new();
    let mut pages = Vec::new();
    let mut items = 0;
    let mut later_schema: Option<Verdict> = None;
    let end = loop {
        let number = pages.len() + 1;
        let answer = ctx
            .call(
                &format!("transactions, page {number}"),
                Method::GET,
                url.as_str(),
                None,
                Bearer::Consent,
            )
            .await?;
        if number == 1 && answer.status == 204 {
            return Ok(None);
        }
        let json = answer.json();
        let list = json
            .as_ref()
            .and_then(|j| j.get("transactions"))
            .and_then(Value::as_array);
        let (200, Some(list)) = (answer.status, list) else {
            break End::Error(format!(
                "page {number} ({}) answered {}{}",
                url,
                answer.brief(),
                if answer.status == 200 {
                    " without a transactions list"
                } else {
                    ""
                }
            ));
        };
        items += list.len();
        if number > 1
            && later_schema
                .as_ref()
                .is_none_or(|v| v.outcome != Outcome::Fail)
        {
            let verdict = schema_verdict(
                ctx,
                &answer,
                "HalTransactions",
                &format!("page {number} of the transactions"),
            );
            if verdict.outcome != Outcome::Pass {
                later_schema = Some(verdict);
            }
        }
        visited.push(url.to_string());
        let json = json.unwrap_or(Value::Null);
        pages.push(PageSeen {
            number,
            has_self: json.pointer("/_links/self/href").is_some(),
        });
        let Some(href) = json.pointer("/_links/next/href").and_then(Value::as_str) else {
            break End::Last;
        };
        let next: Url = match stet_client::resolve_next_link(&api_base, &url, href) {
            Ok(u) => u,
            Err(stet_client::LinkError::ForeignHost { .. }) => break End::Foreign(href.to_owned()),
            Err(e) => break End::Bad(format!("page {number}'s next link `{href}`: {e}")),
        };
        if origin(&next) != origin(&api_base) {
            break End::Foreign(href.to_owned());
        }
        if let Some(i) = visited.iter().position(|v| v == next.as_str()) {
            break End::Loop {
                href: href.to_owned(),
                back_to: i + 1,
            };
        }
        if pages.len() >= MAX_PAGES {
            break End::Limit;
        }
        url = next;
    };
    Ok(Some(Walk {
        pages,
        items,
        end,
        later_schema,
    }))
}

fn one_page(walk: &Walk) -> bool {
    walk.pages.len() == 1 && matches!(walk.end, End::Last)
}

/// A walk over more than one page, or why there is none to judge (N/A).
async fn paged(ctx: &Ctx<'_>) -> Result<Result<Walk, Verdict>, Verdict> {
    Ok(match walk(ctx).await? {
        None => Err(Verdict::not_applicable(
            "no transactions (204): nothing to page through",
        )),
        Some(walk) if one_page(&walk) => Err(Verdict::not_applicable(format!(
            "the transactions fit on one page ({} items): no next link to follow",
            walk.items
        ))),
        Some(walk) => Ok(walk),
    })
}

/// STET-PAG-001.
pub(crate) async fn walk_to_end(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let walk = match paged(ctx).await? {
        Ok(walk) => walk,
        Err(not_applicable) => return Ok(not_applicable),
    };
    let read = format!("{} pages, {} transactions", walk.pages.len(), walk.items);
    if let Some(schema) = walk
        .later_schema
        .as_ref()
        .filter(|v| v.outcome == Outcome::Fail)
    {
        return Ok(Verdict::fail(format!(
            "{} (the first page is STET-RES-003's; after {read})",
            schema.reason
        )));
    }
    let unknown = walk.later_schema.map(|v| v.reason);
    let verdict = match walk.end {
        End::Last => Verdict::pass(format!("walked to the last page: {read}")),
        End::Error(e) => Verdict::fail(format!(
            "a next link led to a page that failed: {e} (after {read})"
        )),
        End::Bad(e) => Verdict::fail(e),
        End::Limit => Verdict::warn(format!("still a next link after {MAX_PAGES} pages")),
        End::Loop { .. } | End::Foreign(_) => Verdict::pass(format!(
            "every page reached answered ({read}); the walk stopped at a link that \
             STET-PAG-002 or STET-PAG-004 judges"
        )),
    };
    Ok(match unknown {
        Some(unknown) if verdict.outcome == Outcome::Pass => {
            Verdict::warn(format!("{}; but {unknown}", verdict.reason))
        }
        _ => verdict,
    })
}

/// STET-PAG-002.
pub(crate) async fn no_loop(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let walk = match paged(ctx).await? {
        Ok(walk) => walk,
        Err(not_applicable) => return Ok(not_applicable),
    };
    Ok(match walk.end {
        End::Loop { href, back_to } => Verdict::fail(format!(
            "page {}'s next link `{href}` leads back to page {back_to}: a client following \
             next would never end",
            walk.pages.len()
        )),
        _ => Verdict::pass(format!(
            "{} pages, no next link back to a page already read",
            walk.pages.len()
        )),
    })
}

/// STET-PAG-003.
pub(crate) async fn self_link(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let Some(walk) = walk(ctx).await? else {
        return Ok(Verdict::not_applicable(
            "no transactions (204): no page to look at",
        ));
    };
    let missing: Vec<String> = walk
        .pages
        .iter()
        .filter(|p| !p.has_self)
        .map(|p| p.number.to_string())
        .collect();
    Ok(if missing.is_empty() {
        Verdict::pass(format!("all {} pages have _links.self", walk.pages.len()))
    } else {
        Verdict::fail(format!(
            "page(s) {} of {} have no _links.self",
            missing.join(", "),
            walk.pages.len()
        ))
    })
}

/// STET-PAG-004.
pub(crate) async fn same_origin(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let walk = match paged(ctx).await? {
        Ok(walk) => walk,
        Err(not_applicable) => return Ok(not_applicable),
    };
    Ok(match walk.end {
        End::Foreign(href) => Verdict::fail(format!(
            "page {}'s next link `{href}` leaves the bank's origin ({}): a client following \
             it would send the PSU's token and a signature elsewhere",
            walk.pages.len(),
            origin(ctx.session.transport().api_base())
        )),
        _ => Verdict::pass(format!(
            "every next link of {} pages stays on {}",
            walk.pages.len(),
            origin(ctx.session.transport().api_base())
        )),
    })
}

/// `transactions?dateFrom=…&dateTo=…` for the first account.
async fn window(
    ctx: &Ctx<'_>,
    from: time::Date,
    to: Option<time::Date>,
) -> Result<(String, crate::session::Answer), Verdict> {
    let account = ctx.session.account().await?;
    let stamp = |d: time::Date| ctx.bank().format_datetime(d.midnight().assume_utc());
    let query = {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("dateFrom", &stamp(from));
        if let Some(to) = to {
            query.append_pair("dateTo", &stamp(to));
        }
        query.finish()
    };
    let target = format!("accounts/{}/transactions?{query}", segment(&account.id));
    let answer = ctx
        .call(
            &format!("GET {target}"),
            Method::GET,
            &target,
            None,
            Bearer::Consent,
        )
        .await?;
    Ok((target, answer))
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// STET-PAG-005.
pub(crate) async fn empty_is_204(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let from = today() + time::Duration::days(2);
    let (target, answer) = window(ctx, from, Some(from + time::Duration::days(1))).await?;
    let items = answer.json().and_then(|j| {
        j.get("transactions")
            .and_then(Value::as_array)
            .map(Vec::len)
    });
    Ok(match (answer.status, items) {
        (204, _) => Verdict::pass("a window in the future answered 204 No Content"),
        (200, Some(0)) => Verdict::fail(format!(
            "GET {target} (a window in the future) answered 200 with an empty list where STET \
             answers 204 No Content"
        )),
        (200, Some(n)) => Verdict::fail(format!(
            "GET {target} (a window in the future) listed {n} transactions"
        )),
        _ => Verdict::fail(format!("GET {target} answered {}", answer.brief())),
    })
}

/// The date of a transaction as listed (booking date, else transaction date, else value
/// date, else expected booking date).
fn item_date(item: &Value) -> Option<time::Date> {
    let text = [
        "bookingDate",
        "transactionDate",
        "valueDate",
        "expectedBookingDate",
    ]
    .iter()
    .find_map(|k| {
        item.get(*k)
            .and_then(Value::as_str)
            .filter(|s| s.len() >= 10)
    })?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(&text[..10], format).ok()
}

/// STET-PAG-006.
pub(crate) async fn date_range(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let from = today() - time::Duration::days(60);
    let to = today() - time::Duration::days(30);
    let (target, answer) = window(ctx, from, Some(to)).await?;
    if answer.status == 204 {
        return Ok(Verdict::not_applicable(format!(
            "no transactions between {from} and {to} (204): nothing to check the bounds on"
        )));
    }
    let Some(mut items) = answer
        .json()
        .and_then(|j| j.get("transactions").and_then(Value::as_array).cloned())
    else {
        return Ok(Verdict::fail(format!(
            "GET {target} answered {}",
            answer.brief()
        )));
    };
    // Every page of the window: a bank that ignores one bound may list the transactions
    // outside it on a later page (newest first, those before dateFrom come last). A page that
    // fails, loops or leaves the origin ends the reading; the paging cases judge those.
    let api_base = ctx.session.transport().api_base().clone();
    let mut url = api_base
        .join(&target)
        .map_err(|e| Verdict::fail(format!("cannot make the URL of {target}: {e}")))?;
    let mut visited = vec![url.to_string()];
    let mut next = answer.json().and_then(|j| {
        j.pointer("/_links/next/href")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    while let Some(href) = next.take() {
        let Ok(link) = stet_client::resolve_next_link(&api_base, &url, &href) else {
            break;
        };
        if origin(&link) != origin(&api_base)
            || visited.contains(&link.to_string())
            || visited.len() >= MAX_PAGES
        {
            break;
        }
        let number = visited.len() + 1;
        let page = ctx
            .call(
                &format!("GET {target}, page {number}"),
                Method::GET,
                link.as_str(),
                None,
                Bearer::Consent,
            )
            .await?;
        let Some(json) = page.json().filter(|_| page.status == 200) else {
            break;
        };
        if let Some(list) = json.get("transactions").and_then(Value::as_array) {
            items.extend(list.iter().cloned());
        }
        next = json
            .pointer("/_links/next/href")
            .and_then(Value::as_str)
            .map(str::to_owned);
        visited.push(link.to_string());
        url = link;
    }
    let pages = visited.len();
    // A day either side: banks date in their own time zone, the bounds are midnight UTC.
    let day = time::Duration::days(1);
    let outside: Vec<String> = items
        .iter()
        .filter_map(|item| {
            let date = item_date(item)?;
            (date < from - day || date >= to + day).then(|| {
                let id = item
                    .get("entryReference")
                    .or_else(|| item.get("resourceId"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                format!("{id} ({date})")
            })
        })
        .collect();
    Ok(if outside.is_empty() {
        Verdict::pass(format!(
            "all {} transactions listed ({pages} page(s)) fall in [{from}, {to})",
            items.len()
        ))
    } else {
        Verdict::fail(format!(
            "asked for [{from}, {to}), the bank listed {} transaction(s) outside it: {}",
            outside.len(),
            outside
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// STET-PAG-007.
pub(crate) async fn history_window(ctx: &Ctx<'_>) -> Result<Verdict, Verdict> {
    let token = ctx.token(Bearer::Consent, false).await?;
    let extended = &ctx.bank().scopes.extended_history;
    if token.scopes.iter().any(|s| s == extended) {
        return Ok(Verdict::not_applicable(format!(
            "the consent includes `{extended}`: older history is allowed"
        )));
    }
    let days = i64::from(ctx.bank().history_without_extended_scope_days) + 30;
    let from = today() - time::Duration::days(days);
    let (target, answer) = window(ctx, from, None).await?;
    Ok(refused(
        ctx,
        &answer,
        &format!("transactions from {days} days back (GET {target}) without `{extended}`"),
        &[401, 403],
        true,
    ))
}
