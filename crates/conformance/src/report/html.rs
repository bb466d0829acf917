//! One self-contained HTML page for a person: a summary, each area, each case with its
//! evidence. Styles and the small filtering script are inline, and the page's
//! Content-Security-Policy forbids loading anything: it needs no network.

use std::fmt::Write as _;

use super::{CaseResult, Report, escape};
use crate::catalogue::Area;
use crate::outcome::{Exchange, Outcome};

const STYLE: &str = r#"
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d232b}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d5dae0}
table{border-collapse:collapse}td,th{padding:.2rem .8rem .2rem 0;text-align:left;vertical-align:top}
.verdict{font-weight:700;padding:.3rem .7rem;border-radius:.3rem;display:inline-block}
.passed{background:#dff3e4;color:#14532d}.failed{background:#fde2e1;color:#7f1d1d}
.o{font-weight:700;font-size:.8rem;padding:.1rem .45rem;border-radius:.25rem;margin-right:.5rem;display:inline-block;min-width:3.2rem;text-align:center}
.o-PASS{background:#dff3e4;color:#14532d}.o-FAIL{background:#fde2e1;color:#7f1d1d}.o-WARN{background:#fef3c7;color:#78350f}
.o-SKIP,.o-NA{background:#e5e7eb;color:#374151}.o-WAIVED{background:#e0e7ff;color:#312e81}
details{border:1px solid #e3e6ea;border-radius:.3rem;margin:.35rem 0;padding:.35rem .6rem}summary{cursor:pointer}
.reason{margin:.4rem 0}.meta{color:#5b6470;font-size:.85rem}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.8rem;white-space:pre-wrap;word-break:break-all}
.filters button{margin-right:.4rem}body.failures-only details.c-PASS{display:none}
"#;

const SCRIPT: &str = r#"
(function(){
  var body=document.body,button=document.getElementById('toggle'),shown=document.getElementById('shown');
  function count(){var n=0;document.querySelectorAll('details.case').forEach(function(d){if(getComputedStyle(d).display!=='none'){n++;}});shown.textContent=String(n);}
  button.addEventListener('click',function(){body.classList.toggle('failures-only');button.textContent=body.classList.contains('failures-only')?'Show every case':'Show only what did not pass';count();});
  document.querySelectorAll('details.case.c-FAIL,details.case.c-WARN').forEach(function(d){d.open=true;});
  count();body.setAttribute('data-ready','yes');
})();
"#;

fn class(case: &CaseResult) -> &'static str {
    match (case.outcome, &case.waived) {
        (Outcome::Fail, Some(_)) => "WAIVED",
        (Outcome::Pass, _) => "PASS",
        (Outcome::Fail, _) => "FAIL",
        (Outcome::Warn, _) => "WARN",
        (Outcome::Skip, _) => "SKIP",
        (Outcome::NotApplicable, _) => "NA",
    }
}

fn exchange(out: &mut String, e: &Exchange) {
    let mut text = format!("{} {}\n", e.request.method, e.request.url);
    for (n, v) in &e.request.headers {
        let _ = writeln!(text, "{n}: {v}");
    }
    if let Some(body) = &e.request.body {
        let _ = writeln!(text, "\n{body}");
    }
    text.push_str("\n──────── answer ────────\n");
    match (&e.response, &e.error) {
        (Some(r), _) => {
            let _ = writeln!(text, "HTTP {}", r.status);
            for (n, v) in &r.headers {
                let _ = writeln!(text, "{n}: {v}");
            }
            if !r.body.is_empty() {
                let _ = writeln!(text, "\n{}", r.body);
            }
        }
        (None, Some(err)) => {
            let _ = writeln!(text, "no answer: {err}");
        }
        (None, None) => {}
    }
    let _ = write!(
        out,
        "<p class=\"meta\">{} ({} ms)</p><pre>{}</pre>",
        escape(&e.purpose),
        e.duration_ms,
        escape(&text)
    );
}

/// The report as a self-contained HTML page.
pub fn html(report: &Report) -> String {
    let mut out = String::new();
    let verdict = if report.summary.passed {
        "passed"
    } else {
        "failed"
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>STET conformance: {profile}</title><style>{STYLE}</style></head>\
         <body data-verdict=\"{verdict}\"><h1>STET conformance: {profile}</h1>\
         <p class=\"meta\">{bank} (STET {dialect}, checked against the official {schema} schemas) at {api}; \
         catalogue {cat} ({source}); consent {consent}; started {started}; {secs:.1} s, {calls} requests</p>",
        profile = escape(&report.bank.profile),
        bank = escape(&report.bank.bank),
        dialect = escape(&report.bank.dialect),
        schema = escape(&report.bank.schema),
        api = escape(&report.bank.api_base),
        cat = escape(&report.catalogue.version),
        source = escape(&report.catalogue.source),
        consent = escape(&report.consent),
        started = escape(&report.started_at),
        secs = report.duration_ms as f64 / 1000.0,
        calls = report.summary.calls,
    );
    let _ = write!(
        out,
        "<h2>Summary</h2><p><span id=\"verdict\" class=\"verdict {verdict}\">{}</span></p><table id=\"summary\">",
        if report.summary.passed {
            "PASSED"
        } else {
            "FAILED"
        }
    );
    for o in Outcome::ALL {
        let _ = write!(
            out,
            "<tr><th><span class=\"o o-{}\">{}</span></th><td data-outcome=\"{}\">{}</td></tr>",
            if o == Outcome::NotApplicable {
                "NA"
            } else {
                o.label()
            },
            o.label(),
            o.label(),
            report.count(o)
        );
    }
    let _ = write!(
        out,
        "<tr><th><span class=\"o o-WAIVED\">WAIVED</span></th><td data-outcome=\"WAIVED\">{}</td></tr></table>",
        report.summary.waived
    );
    let tls = &report.bank.tls;
    let _ = write!(
        out,
        "<p class=\"meta\" id=\"tls\">TLS: {}</p>",
        escape(&match &tls.error {
            None => format!(
                "{} {}{}",
                tls.version,
                tls.cipher,
                tls.alpn
                    .as_deref()
                    .map(|a| format!(", ALPN {a}"))
                    .unwrap_or_default()
            ),
            Some(e) => format!("not recorded: {e}"),
        })
    );
    if !report.waivers.stale.is_empty() || !report.waivers.expired.is_empty() {
        out.push_str("<h2>Waivers</h2><ul id=\"waivers\">");
        for s in &report.waivers.stale {
            let _ = write!(
                out,
                "<li>Stale: {} now ends {} (waived for: {}). Remove it from the waivers file.</li>",
                escape(&s.case),
                s.outcome,
                escape(&s.reason)
            );
        }
        for e in &report.waivers.expired {
            let _ = write!(out, "<li>Expired: {}</li>", escape(e));
        }
        out.push_str("</ul>");
    }
    out.push_str(
        "<p class=\"filters\"><button id=\"toggle\" type=\"button\">Show only what did not pass</button> \
         <span class=\"meta\"><span id=\"shown\"></span> cases shown</span></p>",
    );
    for area in Area::ALL {
        let cases: Vec<&CaseResult> = report.cases.iter().filter(|c| c.area == area).collect();
        if cases.is_empty() {
            continue;
        }
        let passed = cases.iter().filter(|c| c.outcome == Outcome::Pass).count();
        let _ = write!(
            out,
            "<section id=\"area-{area}\"><h2>{} <span class=\"meta\">{passed} of {} passed</span></h2>",
            escape(&format!(
                "{}{}",
                &area.name()[..1].to_uppercase(),
                &area.name()[1..]
            )),
            cases.len()
        );
        for case in cases {
            let c = class(case);
            let _ = write!(
                out,
                "<details class=\"case c-{c}\" id=\"{id}\" data-outcome=\"{outcome}\"><summary><span class=\"o o-{c}\">{label}</span><b>{id}</b> {title}</summary>\
                 <p class=\"reason\">{reason}</p><p class=\"meta\">{clause}; {severity:?}; {ms} ms, {calls} requests{cost}</p>",
                id = escape(&case.id),
                outcome = case.outcome.label(),
                label = if c == "WAIVED" {
                    "WAIVED"
                } else {
                    case.outcome.label()
                },
                title = escape(&case.title),
                reason = escape(&case.reason),
                clause = escape(&case.clause),
                severity = case.severity,
                ms = case.duration_ms,
                calls = case.calls,
                cost = if case.cost.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; costs {}",
                        case.cost
                            .iter()
                            .map(|c| c.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            );
            if let Some(w) = &case.waived {
                let _ = write!(
                    out,
                    "<p class=\"meta\">Waived until {}: {}</p>",
                    escape(&w.expires),
                    escape(&w.reason)
                );
            }
            for e in &case.evidence {
                exchange(&mut out, e);
            }
            out.push_str("</details>");
        }
        out.push_str("</section>");
    }
    if !report.suggested_waivers.is_empty() {
        let _ = write!(
            out,
            "<h2>Waivers for these failures</h2><p class=\"meta\">To accept a failure as a known deviation, put its stanza in the waivers file (--waivers).</p><pre id=\"suggested\">{}</pre>",
            escape(&report.suggested_waivers)
        );
    }
    let _ = writeln!(out, "<script>{SCRIPT}</script></body></html>");
    out
}
