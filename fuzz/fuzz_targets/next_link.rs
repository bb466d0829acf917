//! `_links.next` resolution: any href a bank writes either resolves to a URL on the bank's own
//! host or is refused; never a panic, never another host.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stet_client::resolve_next_link;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(href) = std::str::from_utf8(data) else { return };
    let base = Url::parse("https://api.bank.example/stet/psd2/v1.5/").expect("base");
    let current = Url::parse("https://api.bank.example/stet/psd2/v1.5/accounts/A1/transactions?page=2").expect("current");
    if let Ok(next) = resolve_next_link(&base, &current, href) {
        assert_eq!(next.host_str(), Some("api.bank.example"));
        assert_eq!(next.scheme(), "https");
        assert_eq!(next.port_or_known_default(), Some(443));
    }
});
