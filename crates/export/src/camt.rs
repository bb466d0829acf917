//! ISO 20022 camt.053 BankToCustomerStatement: one `Stmt` per account, its opening (`OPBD`)
//! and closing (`CLBD`) balances, one `Ntry` per row with the stable id as `NtryRef` and
//! `AcctSvcrRef` (what Actual and others deduplicate on; both are `Max35Text`, which the id
//! fits and STET's 40-character `entryReference` does not).
//!
//! Version 2 (`camt.053.001.02`) is the default; later versions differ, for what is written
//! here, in the entry status (a code up to `.06`, a choice with `Cd` from `.07`) and the
//! related party (`Nm` up to `.06`, `Pty/Nm` from `.07`).

use std::io::{self, Write};

use rust_decimal::Decimal;
use stet_store::TransactionRow;
use time::Date;

use crate::text::{chars, one_line, pieces, xml};
use crate::{AccountPlan, Balance, ExportPlan, Writer, row_date};

pub(crate) struct Camt {
    version: u8,
    created: String,
}

impl Camt {
    pub(crate) fn new(version: u8) -> Self {
        Camt {
            version,
            created: String::new(),
        }
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn amount(out: &mut dyn Write, value: Decimal, currency: &str) -> io::Result<()> {
    let side = if value.is_sign_negative() && !value.is_zero() {
        "DBIT"
    } else {
        "CRDT"
    };
    write!(
        out,
        "<Amt Ccy=\"{}\">{}</Amt><CdtDbtInd>{side}</CdtDbtInd>",
        xml(currency),
        value.abs()
    )
}

fn balance(out: &mut dyn Write, code: &str, b: &Balance) -> io::Result<()> {
    write!(
        out,
        "      <Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
    )?;
    amount(out, b.amount, &b.currency)?;
    writeln!(out, "<Dt><Dt>{}</Dt></Dt></Bal>", b.date)
}

impl Writer for Camt {
    fn begin(&mut self, out: &mut dyn Write, plan: &ExportPlan) -> io::Result<()> {
        self.created = rfc3339(plan.options.created);
        let stamp: String = self.created.chars().filter(char::is_ascii_digit).collect();
        writeln!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{:02}\">\n\
             <BkToCstmrStmt>\n  <GrpHdr><MsgId>STET-{stamp}</MsgId><CreDtTm>{}</CreDtTm></GrpHdr>",
            self.version, self.created
        )
    }

    fn begin_account(&mut self, out: &mut dyn Write, a: &AccountPlan) -> io::Result<()> {
        let id: String = a
            .id_text()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let stamp: String = self.created.chars().filter(char::is_ascii_digit).collect();
        let tail = &id[id.len().saturating_sub(20)..];
        writeln!(
            out,
            "  <Stmt>\n    <Id>{tail}-{}</Id>\n    <CreDtTm>{}</CreDtTm>",
            chars(&stamp, 14),
            self.created
        )?;
        if let (Some(s), Some(e)) = (a.start, a.end) {
            writeln!(
                out,
                "    <FrToDt><FrDtTm>{s}T00:00:00</FrDtTm><ToDtTm>{e}T23:59:59</ToDtTm></FrToDt>"
            )?;
        }
        write!(out, "    <Acct><Id>")?;
        match &a.account.iban {
            Some(iban) => write!(out, "<IBAN>{}</IBAN>", xml(iban))?,
            None => write!(
                out,
                "<Othr><Id>{}</Id></Othr>",
                xml(chars(&a.account.account_key, 34))
            )?,
        }
        write!(out, "</Id>")?;
        if !a.currency.is_empty() {
            write!(out, "<Ccy>{}</Ccy>", xml(&a.currency))?;
        }
        if let Some(name) = &a.account.name {
            write!(out, "<Nm>{}</Nm>", xml(chars(&one_line(name), 70)))?;
        }
        writeln!(out, "</Acct>")?;
        // At least one balance is required: the opening one, else zero at the first day.
        let opening = a.opening.clone().unwrap_or_else(|| Balance {
            date: a.start.unwrap_or(Date::MIN),
            amount: Decimal::ZERO,
            currency: a.currency.clone(),
        });
        balance(out, "OPBD", &opening)?;
        if let Some(c) = &a.closing {
            balance(out, "CLBD", c)?;
        }
        Ok(())
    }

    fn transaction(
        &mut self,
        out: &mut dyn Write,
        _a: &AccountPlan,
        row: &TransactionRow,
    ) -> io::Result<()> {
        let status = match row.status.as_str() {
            "BOOK" => "BOOK",
            _ => "PDNG",
        };
        write!(out, "      <Ntry><NtryRef>{}</NtryRef>", row.stable_id)?;
        amount(out, row.amount, &row.currency)?;
        if self.version >= 7 {
            write!(out, "<Sts><Cd>{status}</Cd></Sts>")?;
        } else {
            write!(out, "<Sts>{status}</Sts>")?;
        }
        if let Some(d) = row_date(row) {
            write!(out, "<BookgDt><Dt>{d}</Dt></BookgDt>")?;
        }
        if let Some(v) = row.value_date {
            write!(out, "<ValDt><Dt>{v}</Dt></ValDt>")?;
        }
        write!(out, "<AcctSvcrRef>{}</AcctSvcrRef>", row.stable_id)?;
        // STET gives no ISO bank transaction code: "not available" in the payments domain.
        write!(
            out,
            "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>NTAV</Cd><SubFmlyCd>NTAV</SubFmlyCd></Fmly></Domn></BkTxCd>"
        )?;
        write!(out, "<NtryDtls><TxDtls>")?;
        if let Some(r) = row
            .entry_reference
            .as_deref()
            .filter(|r| !r.is_empty() && r.chars().count() <= 35)
        {
            write!(
                out,
                "<Refs><Prtry><Tp>entryReference</Tp><Ref>{}</Ref></Prtry></Refs>",
                xml(r)
            )?;
        }
        if let Some(party) = row
            .counterparty
            .as_deref()
            .map(one_line)
            .filter(|c| !c.is_empty())
        {
            let role = if row.amount.is_sign_negative() {
                "Cdtr"
            } else {
                "Dbtr"
            };
            let name = xml(chars(&party, 70));
            if self.version >= 7 {
                write!(
                    out,
                    "<RltdPties><{role}><Pty><Nm>{name}</Nm></Pty></{role}></RltdPties>"
                )?;
            } else {
                write!(
                    out,
                    "<RltdPties><{role}><Nm>{name}</Nm></{role}></RltdPties>"
                )?;
            }
        }
        let label = one_line(row.label.as_deref().unwrap_or_default());
        if !label.is_empty() {
            write!(out, "<RmtInf>")?;
            for p in pieces(&label, 140) {
                write!(out, "<Ustrd>{}</Ustrd>", xml(p))?;
            }
            write!(out, "</RmtInf>")?;
        }
        write!(out, "</TxDtls></NtryDtls>")?;
        if !label.is_empty() {
            write!(
                out,
                "<AddtlNtryInf>{}</AddtlNtryInf>",
                xml(chars(&label, 500))
            )?;
        }
        writeln!(out, "</Ntry>")
    }

    fn end_account(&mut self, out: &mut dyn Write, _a: &AccountPlan) -> io::Result<()> {
        writeln!(out, "  </Stmt>")
    }

    fn finish(&mut self, out: &mut dyn Write, _plan: &ExportPlan) -> io::Result<()> {
        writeln!(out, "</BkToCstmrStmt>\n</Document>")
    }
}
