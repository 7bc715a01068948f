//! Percent-decoding (RFC 3986 section 2.1), once for the server and the SDK:
//! PKCS#11 URIs (RFC 7512), the TLS parameters of a store URL, and the
//! certificate in an `x-forwarded-client-cert` header.

/// The bytes `value` encodes; `None` when a `%` is not followed by two hex digits.
pub fn decode(value: &str) -> Option<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_decode_and_broken_ones_are_refused() {
        assert_eq!(super::decode("%2Fetc%2fca.pem").as_deref(), Some(&b"/etc/ca.pem"[..]));
        assert_eq!(
            super::decode("a+b").as_deref(),
            Some(&b"a+b"[..]),
            "+ is a plus in a URI"
        );
        assert_eq!(super::decode("%2"), None);
        assert_eq!(super::decode("%zz"), None);
    }
}
