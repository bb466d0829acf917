//! The `Signature` header parser: any string gives parameters or an error, and parameters that
//! parse format back to a header that parses to the same parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stet_httpsig::SignatureParams;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(params) = SignatureParams::parse(text) {
        let again = SignatureParams::parse(&params.to_header_value())
            .expect("a formatted header parses");
        assert_eq!(again, params);
    }
});
