//! HMAC-SHA256 signatures, for the audit chain and the webhook backend's
//! request signatures.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// HMAC-SHA256 of `bytes` under `key`, lower-case hex.
pub(crate) fn hmac_hex(key: &[u8], bytes: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else { return String::new() };
    mac.update(bytes);
    hex(&mac.finalize().into_bytes())
}

#[cfg(feature = "audit")]
/// Whether `mac_hex` is the HMAC-SHA256 of `bytes` under `key`, compared in
/// constant time.
pub(crate) fn hmac_matches(key: &[u8], bytes: &[u8], mac_hex: &str) -> bool {
    let Some(expected) = unhex(mac_hex) else { return false };
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else { return false };
    mac.update(bytes);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(feature = "audit")]
/// Lower-case or upper-case hex to bytes; `None` for anything else.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}
