//! The configuration file: any text parses into a profile or gives an error that names the
//! file; resolving whatever parsed never panics either.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stet_transport::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("/fuzz/config.toml");
    match config::parse(text, path) {
        Ok(file) => {
            let _ = config::resolve(&file, None, Some(path), &|_| None);
            for name in file.profiles.keys() {
                let _ = config::resolve(&file, Some(name), Some(path), &|_| None);
            }
        }
        Err(e) => assert!(e.to_string().contains("/fuzz/config.toml")),
    }
});
