//! OFX bank statements: 1.02 (SGML, Windows-1252) by default, 2.2 (XML, UTF-8) on request.
//!
//! What importers trip on, and what is written instead:
//! - a 27-character French IBAN does not fit `ACCTID` (22): the RIB is split into `BANKID`
//!   (code banque), `BRANCHID` (code guichet), `ACCTID` (numéro de compte) and `ACCTKEY`
//!   (clé RIB);
//! - ledger-autosync needs `<FI><FID>`: the code banque (or the bank's name);
//! - date-only timestamps make libofx warn: every date is a full timestamp at midday UTC, so
//!   no importer moves it to another day;
//! - `NAME` holds 32 characters: the payee or label is cut there, the full text is in `MEMO`;
//! - UTF-8 in OFX 2 crashes ofxparse: 1.02 in Windows-1252 is the default;
//! - `FITID` is the store's stable id, which never moves.

use std::borrow::Cow;
use std::io::{self, Write};

use stet_store::TransactionRow;
use time::Date;

use crate::text::{chars, cp1252, one_line, rib_split, xml};
use crate::{AccountPlan, ExportPlan, OfxVersion, Writer, row_date};

pub(crate) struct Ofx {
    version: OfxVersion,
}

impl Ofx {
    pub(crate) fn new(version: OfxVersion) -> Self {
        Ofx { version }
    }

    fn put(&self, out: &mut dyn Write, text: &str) -> io::Result<()> {
        match self.version {
            // Printable ASCII and line ends are the same bytes in Windows-1252.
            OfxVersion::V102 if !text.bytes().all(plain_or_line_end) => {
                out.write_all(&cp1252(text))
            }
            _ => out.write_all(text.as_bytes()),
        }
    }

    /// A leaf element: SGML leaves have no end tag, XML ones do.
    fn leaf(&self, out: &mut dyn Write, tag: &str, value: &str) -> io::Result<()> {
        // Most values (dates, amounts, ids, most labels) need no work: printable ASCII, no
        // character to escape, single spaces inside. They are written as they are; the rest
        // goes through the full treatment, which gives the same bytes for those.
        let escaped;
        let value = if is_clean(value) {
            value
        } else {
            escaped = xml(&one_line(value));
            &escaped
        };
        out.write_all(b"<")?;
        out.write_all(tag.as_bytes())?;
        out.write_all(b">")?;
        self.put(out, value)?;
        match self.version {
            OfxVersion::V102 => out.write_all(b"\n"),
            OfxVersion::V220 => {
                out.write_all(b"</")?;
                out.write_all(tag.as_bytes())?;
                out.write_all(b">\n")
            }
        }
    }
}

/// `text` on one line, borrowed when it needs no change (most labels).
fn line(text: &str) -> Cow<'_, str> {
    if is_clean(text) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(one_line(text))
    }
}

/// A byte Windows-1252 writes as it is: printable ASCII, or a line end or tab.
fn plain_or_line_end(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || matches!(b, b'\n' | b'\r' | b'\t')
}

/// Whether `xml(&one_line(value))` is `value` itself: printable ASCII without `&<>"`, no
/// space at either end or twice in a row.
fn is_clean(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && bytes
            .iter()
            .all(|b| (0x20..0x7f).contains(b) && !matches!(b, b'&' | b'<' | b'>' | b'"'))
        && !bytes.windows(2).any(|w| w == b"  ")
}

/// `YYYYMMDD120000.000[0:GMT]`: midday, so no importer shifts the day.
fn timestamp(d: Date) -> String {
    format!(
        "{:04}{:02}{:02}120000.000[0:GMT]",
        d.year(),
        u8::from(d.month()),
        d.day()
    )
}

fn instant(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}.000[0:GMT]",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `FID` and `ACCTID` of an account, as `BANKACCTFROM` and `FI` carry them.
pub(crate) fn fid_and_acctid(a: &AccountPlan) -> (String, String) {
    match a.account.iban.as_deref().and_then(rib_split) {
        Some((bank, _, account, _)) => (bank.to_owned(), account.to_owned()),
        None => {
            let id: String = a
                .id_text()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            let tail = &id[id.len().saturating_sub(22)..];
            (
                chars(&crate::text::account_component(&a.account.bank), 9).to_owned(),
                tail.to_owned(),
            )
        }
    }
}

impl Writer for Ofx {
    fn begin(&mut self, out: &mut dyn Write, plan: &ExportPlan) -> io::Result<()> {
        match self.version {
            OfxVersion::V102 => self.put(
                out,
                "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\n\
                 CHARSET:1252\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n",
            )?,
            OfxVersion::V220 => self.put(
                out,
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n\
                 <?OFX OFXHEADER=\"200\" VERSION=\"220\" SECURITY=\"NONE\" OLDFILEUID=\"NONE\" NEWFILEUID=\"NONE\"?>\n",
            )?,
        }
        self.put(out, "<OFX>\n<SIGNONMSGSRSV1>\n<SONRS>\n<STATUS>\n")?;
        self.leaf(out, "CODE", "0")?;
        self.leaf(out, "SEVERITY", "INFO")?;
        self.put(out, "</STATUS>\n")?;
        self.leaf(out, "DTSERVER", &instant(plan.options.created))?;
        self.leaf(out, "LANGUAGE", "FRA")?;
        // One FI per file: the first account's bank.
        if let Some(a) = plan.accounts.first() {
            self.put(out, "<FI>\n")?;
            self.leaf(out, "ORG", chars(&a.account.bank, 32))?;
            self.leaf(out, "FID", &fid_and_acctid(a).0)?;
            self.put(out, "</FI>\n")?;
        }
        self.put(out, "</SONRS>\n</SIGNONMSGSRSV1>\n<BANKMSGSRSV1>\n")
    }

    fn begin_account(&mut self, out: &mut dyn Write, a: &AccountPlan) -> io::Result<()> {
        self.put(out, "<STMTTRNRS>\n")?;
        self.leaf(out, "TRNUID", "0")?;
        self.put(out, "<STATUS>\n")?;
        self.leaf(out, "CODE", "0")?;
        self.leaf(out, "SEVERITY", "INFO")?;
        self.put(out, "</STATUS>\n<STMTRS>\n")?;
        self.leaf(out, "CURDEF", &a.currency)?;
        self.put(out, "<BANKACCTFROM>\n")?;
        match a.account.iban.as_deref().and_then(rib_split) {
            Some((bank, branch, account, key)) => {
                self.leaf(out, "BANKID", bank)?;
                self.leaf(out, "BRANCHID", branch)?;
                self.leaf(out, "ACCTID", account)?;
                self.leaf(out, "ACCTTYPE", "CHECKING")?;
                self.leaf(out, "ACCTKEY", key)?;
            }
            None => {
                let (fid, acctid) = fid_and_acctid(a);
                self.leaf(out, "BANKID", &fid)?;
                self.leaf(out, "ACCTID", &acctid)?;
                self.leaf(out, "ACCTTYPE", "CHECKING")?;
            }
        }
        self.put(out, "</BANKACCTFROM>\n<BANKTRANLIST>\n")?;
        let today = a.end.or(a.start).unwrap_or(time::Date::MIN);
        self.leaf(out, "DTSTART", &timestamp(a.start.unwrap_or(today)))?;
        self.leaf(out, "DTEND", &timestamp(a.end.unwrap_or(today)))
    }

    fn transaction(
        &mut self,
        out: &mut dyn Write,
        _a: &AccountPlan,
        row: &TransactionRow,
    ) -> io::Result<()> {
        let Some(date) = row_date(row) else {
            return Ok(());
        };
        let label = line(row.label.as_deref().unwrap_or_default());
        let payee = row
            .counterparty
            .as_deref()
            .map(line)
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| label.clone());
        self.put(out, "<STMTTRN>\n")?;
        let kind = if row.amount.is_sign_negative() {
            "DEBIT"
        } else {
            "CREDIT"
        };
        self.leaf(out, "TRNTYPE", kind)?;
        self.leaf(out, "DTPOSTED", &timestamp(date))?;
        if let Some(t) = row.transaction_date {
            self.leaf(out, "DTUSER", &timestamp(t))?;
        }
        if let Some(v) = row.value_date {
            self.leaf(out, "DTAVAIL", &timestamp(v))?;
        }
        self.leaf(out, "TRNAMT", &row.amount.to_string())?;
        self.leaf(out, "FITID", &row.stable_id)?;
        self.leaf(out, "NAME", chars(&payee, 32))?;
        let memo = if payee == label || label.is_empty() {
            payee
        } else {
            Cow::Owned(format!("{payee} {label}"))
        };
        if !memo.is_empty() {
            self.leaf(out, "MEMO", chars(&memo, 255))?;
        }
        self.put(out, "</STMTTRN>\n")
    }

    fn end_account(&mut self, out: &mut dyn Write, a: &AccountPlan) -> io::Result<()> {
        self.put(out, "</BANKTRANLIST>\n<LEDGERBAL>\n")?;
        // The bank's latest balance in the export's days, else the computed closing one.
        let (amount, day) = match (a.assertions.last(), &a.closing) {
            (Some(b), _) => (b.amount, b.date),
            (None, Some(c)) => (c.amount, c.date),
            (None, None) => (rust_decimal::Decimal::ZERO, a.end.unwrap_or(Date::MIN)),
        };
        self.leaf(out, "BALAMT", &amount.to_string())?;
        self.leaf(out, "DTASOF", &timestamp(day))?;
        self.put(out, "</LEDGERBAL>\n</STMTRS>\n</STMTTRNRS>\n")
    }

    fn finish(&mut self, out: &mut dyn Write, _plan: &ExportPlan) -> io::Result<()> {
        self.put(out, "</BANKMSGSRSV1>\n</OFX>\n")
    }
}

#[cfg(test)]
mod tests {
    use super::{is_clean, plain_or_line_end};
    use crate::text::{cp1252, one_line, xml};

    #[test]
    fn the_fast_path_writes_what_the_full_treatment_would() {
        for value in [
            "CB CAFE DU COIN 12/03",
            "s1-abc-123",
            "-12.30",
            "20260305120000.000[0:GMT]",
            " leading",
            "trailing ",
            "two  spaces",
            "a & b",
            "<tag>",
            "say \"hi\"",
            "Café",
            "tab\there",
            "",
        ] {
            let full = xml(&one_line(value));
            if is_clean(value) {
                assert_eq!(full, value, "{value:?}");
            }
            if full.bytes().all(plain_or_line_end) {
                assert_eq!(cp1252(&full), full.as_bytes(), "{full:?}");
            }
        }
        assert!(is_clean("CB CAFE DU COIN 12/03"));
        assert!(!is_clean("two  spaces") && !is_clean("a & b") && !is_clean("Café"));
    }
}
