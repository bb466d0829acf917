//! IBANs as the PSU types them: spaces allowed, any case, checked (ISO 13616) before anything
//! is sent to the bank.

/// The IBAN in `s` without spaces, upper-cased, when it has an IBAN's shape: 15 to 34 ASCII
/// letters and digits, a two-letter country code and two check digits. The check digits are
/// not verified here; see [`parse_iban`].
pub fn iban_shape(s: &str) -> Option<String> {
    let iban: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    // ASCII first: the slices below then cut at character boundaries.
    let ok = (15..=34).contains(&iban.len())
        && iban.bytes().all(|b| b.is_ascii_alphanumeric())
        && iban[..2].bytes().all(|b| b.is_ascii_alphabetic())
        && iban[2..4].bytes().all(|b| b.is_ascii_digit());
    ok.then_some(iban)
}

/// A valid IBAN: the shape of [`iban_shape`] and ISO 7064 mod 97-10 check digits.
pub fn parse_iban(s: &str) -> Result<String, String> {
    let iban = iban_shape(s)
        .ok_or_else(|| format!("`{s}` is not an IBAN (e.g. FR76 3000 6000 0112 3456 7890 189)"))?;
    // ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1.
    let mut remainder = 0u32;
    for c in iban[4..].chars().chain(iban[..4].chars()) {
        let value = c.to_digit(36).unwrap_or(0);
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    if remainder != 1 {
        return Err(format!(
            "`{s}` has wrong check digits: check the IBAN for a typo"
        ));
    }
    Ok(iban)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked() {
        assert_eq!(
            parse_iban("FR76 3000 6000 0112 3456 7890 189").unwrap(),
            "FR7630006000011234567890189"
        );
        assert!(
            parse_iban("FR7630006000011234567890188")
                .unwrap_err()
                .contains("check digits")
        );
        assert!(parse_iban("hello").unwrap_err().contains("not an IBAN"));
        assert!(parse_iban("DE89370400440532013000").is_ok());
    }

    #[test]
    fn non_ascii_input_is_not_an_iban_and_does_not_panic() {
        for s in [
            "aé3456789012345678",
            "é23456789012345678",
            "FR7é0006000011234567890189",
        ] {
            assert_eq!(iban_shape(s), None, "{s}");
            assert!(parse_iban(s).is_err(), "{s}");
        }
    }
}
