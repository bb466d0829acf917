//! Reads the `# source: …` comments of a profile file back, key by key.
//!
//! TOML parsers drop comments, and the sources are what makes a profile trustworthy, so this
//! small scanner recovers them. The convention it reads: a comment block directly above a key
//! (no blank line between) or a comment at the end of the key's line, containing `source:`.
//! The text from `source:` to the end of the block is the key's source.

use std::collections::BTreeMap;

/// Dotted key (`signature.headers`) → its source text, for every key that has one.
pub(super) fn scan(text: &str) -> BTreeMap<String, String> {
    let mut sources = BTreeMap::new();
    let mut table = String::new();
    let mut block: Vec<&str> = Vec::new();
    // Inside a multi-line string (its closing delimiter) or a multi-line array.
    let mut in_string: Option<&str> = None;
    let mut in_array = false;

    for line in text.lines() {
        if let Some(delimiter) = in_string {
            if line.contains(delimiter) {
                in_string = None;
            }
            continue;
        }
        let trimmed = line.trim();
        if in_array {
            if trimmed.starts_with(']') || trimmed.ends_with(']') {
                in_array = false;
            }
            continue;
        }
        if trimmed.is_empty() {
            block.clear();
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            block.push(comment.trim());
            continue;
        }
        if trimmed.starts_with('[') {
            table = trimmed.trim_matches(['[', ']', ' ']).to_owned();
            block.clear();
            continue;
        }
        let Some((key, rest)) = trimmed.split_once('=') else {
            block.clear();
            continue;
        };
        let key = key.trim().trim_matches('"');
        let dotted = if table.is_empty() {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        };
        let above = block.join(" ");
        let trailing = rest.find("# source:").map(|at| &rest[at + 1..]);
        let source = trailing
            .map(str::trim)
            .or_else(|| above.find("source:").map(|at| above[at..].trim()));
        if let Some(source) = source {
            let source = source.trim_start_matches("source:").trim();
            sources.insert(dotted, source.to_owned());
        }
        block.clear();

        let value = rest.trim_start();
        for delimiter in ["\"\"\"", "'''"] {
            if value.starts_with(delimiter) && value.matches(delimiter).count() == 1 {
                in_string = Some(delimiter);
            }
        }
        if value.starts_with('[') && !value.contains(']') {
            in_array = true;
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::scan;

    #[test]
    fn reads_comments_above_and_trailing_and_skips_strings() {
        let text = r#"
name = "x"
# source: above,
# continued
dialect = "1.4"
# not a source

base_path = "/v1" # source: trailing
notes = """
# source: inside a string
fake = 1
"""
[signature]
# a remark first; source: the list
headers = [
  "date",
]
# source: key id
key_id = "certificate-url"
"#;
        let s = scan(text);
        assert_eq!(s["dialect"], "above, continued");
        assert_eq!(s["base_path"], "trailing");
        assert_eq!(s["signature.headers"], "the list");
        assert_eq!(s["signature.key_id"], "key id");
        assert!(!s.contains_key("name"));
        assert!(!s.contains_key("fake"));
        assert_eq!(s.len(), 4);
    }
}
