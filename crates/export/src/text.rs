//! Text as each format needs it: Windows-1252 for OFX 1.02, the French RIB split, account
//! name components, one-line labels, escapes.

use unicode_normalization::UnicodeNormalization as _;

/// Windows-1252's bytes 0x80–0x9F (0 where the code page has no character).
const CP1252_HIGH: [char; 32] = [
    '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', '\0', '‘',
    '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
];

/// Letters that have no decomposition but an obvious base letter.
const FALLBACK: &[(char, &str)] = &[
    ('Ł', "L"),
    ('ł', "l"),
    ('Ø', "O"),
    ('ø', "o"),
    ('Đ', "D"),
    ('đ', "d"),
    ('Ħ', "H"),
    ('ħ', "h"),
    ('ı', "i"),
    ('ß', "ss"),
];

fn cp1252_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x80 || (0xA0..=0xFF).contains(&u) {
        return Some(u as u8);
    }
    CP1252_HIGH
        .iter()
        .position(|h| *h == c && c != '\0')
        .map(|i| 0x80 + i as u8)
}

/// `text` in Windows-1252. A character the code page lacks becomes its base letter (`ą` →
/// `a`, `Ł` → `L`), else `?`; control characters become spaces.
pub fn cp1252(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
            out.push(b' ');
            continue;
        }
        if let Some(b) = cp1252_byte(c) {
            out.push(b);
            continue;
        }
        if let Some((_, s)) = FALLBACK.iter().find(|(f, _)| *f == c) {
            out.extend_from_slice(s.as_bytes());
            continue;
        }
        let mut any = false;
        for d in c.to_string().nfkd() {
            // Combining marks (U+0300–U+036F) are dropped; what is left is written if it can be.
            if ('\u{300}'..='\u{36f}').contains(&d) {
                continue;
            }
            if let Some(b) = cp1252_byte(d) {
                out.push(b);
                any = true;
            }
        }
        if !any {
            out.push(b'?');
        }
    }
    out
}

/// A French (or Monégasque) IBAN as the RIB's parts: code banque (5), code guichet (5),
/// numéro de compte (11), clé RIB (2). `None` for other IBANs.
pub fn rib_split(iban: &str) -> Option<(&str, &str, &str, &str)> {
    let ok =
        iban.len() == 27 && (iban.starts_with("FR") || iban.starts_with("MC")) && iban.is_ascii();
    ok.then(|| (&iban[4..9], &iban[9..14], &iban[14..25], &iban[25..27]))
}

/// One component of a ledger account name from free text: letters and digits kept (accents
/// too, the three tools take Unicode letters), the rest as `-`, first letter capital.
pub(crate) fn account_component(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    let mut chars = out.chars();
    match chars.next() {
        None => "Bank".into(),
        Some(f) if f.is_alphabetic() => f.to_uppercase().chain(chars).collect(),
        Some(_) => out,
    }
}

/// Free text on one line: line breaks and tabs as spaces, runs of spaces as one, trimmed.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

/// The first `n` characters of `text`.
pub(crate) fn chars(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// `text` cut in pieces of at most `n` characters.
pub(crate) fn pieces(text: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let head = chars(rest, n);
        out.push(head);
        rest = &rest[head.len()..];
    }
    out
}

/// XML (and SGML) character data.
pub(crate) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp1252_keeps_what_it_has_and_folds_the_rest() {
        assert_eq!(cp1252("CAFÉ €"), b"CAF\xc9 \x80");
        assert_eq!(cp1252("Œuvre — «x»"), b"\x8cuvre \x97 \xabx\xbb");
        assert_eq!(cp1252("ŁÓDŹ ą"), b"L\xd3DZ a");
        assert_eq!(cp1252("a\u{1}b 你\n"), b"a b ?\n");
    }

    #[test]
    fn french_ibans_split_into_the_rib() {
        assert_eq!(
            rib_split("FR7630004000031234567890143"),
            Some(("30004", "00003", "12345678901", "43"))
        );
        assert_eq!(rib_split("DE89370400440532013000"), None);
    }

    #[test]
    fn account_components_are_what_the_tools_accept() {
        assert_eq!(account_component("sandbox"), "Sandbox");
        assert_eq!(account_component("crédit agricole"), "Crédit-agricole");
        assert_eq!(account_component("2047"), "2047");
        assert_eq!(account_component("--"), "Bank");
    }

    #[test]
    fn text_is_cut_on_characters() {
        assert_eq!(chars("ÉÉÉ", 2), "ÉÉ");
        assert_eq!(pieces("abcde", 2), vec!["ab", "cd", "e"]);
        assert_eq!(one_line(" a\n\tb  c "), "a b c");
    }
}
