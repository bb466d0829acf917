//! Whatever the bytes, the response parsers return a value or an error, never a panic; and
//! amounts and dates written by the models read back exactly.

use proptest::prelude::*;
use serde_json::Value;
use stet_models::*;

/// Arbitrary JSON, biased towards the shapes and keys STET uses so parsers go deep.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("amount".to_string()),
        Just("currency".to_string()),
        Just("transactions".to_string()),
        Just("remittanceInformation".to_string()),
        Just("bookingDate".to_string()),
        Just("status".to_string()),
        Just("_links".to_string()),
        Just("href".to_string()),
        Just("balances".to_string()),
        "[a-zA-Z_]{1,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "-?[0-9]{1,30}(\\.[0-9]{0,30})?(e-?[0-9]{1,4})?"
            .prop_map(|s| serde_json::from_str(&s).unwrap_or(Value::Null)),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,12})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?"
            .prop_map(Value::String),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn response_parsers_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_with_every_response_parser(&bytes);
    }

    #[test]
    fn every_model_survives_arbitrary_json(value in json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        parse_with_every_response_parser(&bytes);
        for (_, check) in SCHEMA_CHECKS {
            // Errors are fine; a value that parses must also round-trip.
            if let Err(e @ SchemaCheckError::RoundTrip { .. }) = check(&value) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn amounts_read_back_exactly(int in "0|-?[1-9][0-9]{0,14}", frac in "[0-9]{0,10}") {
        let text = if frac.is_empty() { int } else { format!("{int}.{frac}") };
        for json in [text.clone(), format!("\"{text}\"")] {
            let a: Amount = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(a.to_string(), text.trim_start_matches('+'));
            for dialect in [Dialect::V1_4, Dialect::V1_5] {
                let again: Amount = serde_json::from_slice(&to_json_vec(&a, dialect).unwrap()).unwrap();
                prop_assert_eq!(again, a);
            }
        }
    }

    #[test]
    fn dates_read_back(
        y in 1900i32..2100, m in 1u8..=12, d in 1u8..=28, h in 0u8..24, mi in 0u8..60,
        s in 0u8..60, ms in 0u32..1000, off in -12i8..=14, form in 0usize..4,
    ) {
        let text = match form {
            0 => format!("{y:04}-{m:02}-{d:02}"),
            1 => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
            2 => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z"),
            _ => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}{:02}:00", if off < 0 { '-' } else { '+' }, off.unsigned_abs()),
        };
        let t: StetDateTime = text.parse().unwrap();
        let again: StetDateTime = t.to_string().parse().unwrap();
        prop_assert_eq!(again, t);
    }
}
