//! Distinguished names in their RFC 4514 string form, so that a subject DN
//! registered from the command line (`openssl x509 -noout -subject -nameopt
//! RFC2253` prints one) and the subject of a presented certificate compare
//! as equal strings.
//!
//! The canonical form: relative distinguished names from the last to the
//! first (RFC 4514 section 2.1), separated by `,` without spaces;
//! multi-valued ones joined by `+`; attribute types by their RFC 4514 short
//! names (`CN`, `O`, …; `emailAddress` as OpenSSL writes it), other types as
//! dotted OIDs; values escaped as RFC 4514 section 2.4 says and otherwise
//! kept as they are: compared case-sensitively, byte for byte.

use x509_parser::x509::X509Name;

/// Short names by OID: RFC 4514 section 3, and two OpenSSL writes.
const SHORT_NAMES: [(&str, &str); 11] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
    ("2.5.4.5", "serialNumber"),
];

/// The canonical string of a certificate's name; `None` when an attribute
/// value is not a string (such names cannot be registered, so match nothing).
pub fn certificate_dn(name: &X509Name<'_>) -> Option<String> {
    let mut rdns: Vec<Vec<(String, String)>> = Vec::new();
    for rdn in name.iter() {
        let mut avas = Vec::new();
        for ava in rdn.iter() {
            let oid = ava.attr_type().to_id_string();
            let value = ava.as_str().ok()?;
            avas.push((type_name(&oid), value.to_owned()));
        }
        rdns.push(avas);
    }
    rdns.reverse();
    Some(write(&rdns))
}

/// Parses a DN written as RFC 4514 says (as `openssl … -nameopt RFC2253`
/// prints it) into the canonical string.
///
/// # Errors
/// What is wrong with it, for the operator.
pub fn canonical_dn(text: &str) -> Result<String, String> {
    let mut rdns = Vec::new();
    for rdn in split_unescaped(text, b',')? {
        let mut avas = Vec::new();
        for ava in split_unescaped(rdn, b'+')? {
            let Some((kind, value)) = ava.split_once('=') else {
                return Err(format!("{:?} is not TYPE=value", ava.trim()));
            };
            let kind = kind.trim();
            if kind.is_empty() {
                return Err(format!("{:?} has no attribute type", ava.trim()));
            }
            let canonical = SHORT_NAMES
                .iter()
                .find(|(_, short)| short.eq_ignore_ascii_case(kind))
                .map(|(_, short)| (*short).to_owned());
            let kind = match canonical {
                Some(short) => short,
                None if kind.bytes().all(|b| b.is_ascii_digit() || b == b'.') => type_name(kind),
                None => return Err(format!("unknown attribute type {kind:?}; write it as a dotted OID")),
            };
            avas.push((kind, unescape(value.trim_start())?));
        }
        rdns.push(avas);
    }
    if rdns.is_empty() {
        return Err("the DN is empty".into());
    }
    Ok(write(&rdns))
}

fn type_name(oid: &str) -> String {
    SHORT_NAMES
        .iter()
        .find(|(o, _)| *o == oid)
        .map_or_else(|| oid.to_owned(), |(_, short)| (*short).to_owned())
}

fn write(rdns: &[Vec<(String, String)>]) -> String {
    rdns.iter()
        .map(|avas| {
            avas.iter()
                .map(|(kind, value)| format!("{kind}={}", escape(value)))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// RFC 4514 section 2.4.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
        } else {
            if special {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Undoes RFC 4514 escapes (`\,` and `\2C` alike); trailing unescaped
/// spaces are dropped, as separators' surroundings.
fn unescape(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut kept = 0; // length of `out` up to the last escaped byte
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = bytes.get(i + 1..i + 3).and_then(|pair| {
                let pair = std::str::from_utf8(pair).ok()?;
                u8::from_str_radix(pair, 16).ok()
            });
            match (hex, bytes.get(i + 1)) {
                (Some(byte), _) => {
                    out.push(byte);
                    i += 3;
                }
                (None, Some(&next)) => {
                    out.push(next);
                    i += 2;
                }
                (None, None) => return Err(format!("{value:?} ends in a lone backslash")),
            }
            kept = out.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    while out.len() > kept && out.last() == Some(&b' ') {
        out.pop();
    }
    String::from_utf8(out).map_err(|_| format!("{value:?} escapes bytes that are not UTF-8"))
}

/// Splits on a separator that is not escaped.
fn split_unescaped(text: &str, separator: u8) -> Result<Vec<&str>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == separator => {
                parts.push(&text[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    parts.push(&text[start.min(text.len())..]);
    if parts.iter().any(|p| p.trim().is_empty()) {
        return Err(format!("{text:?} has an empty component"));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_rfc2253_output_is_already_canonical() {
        assert_eq!(
            canonical_dn("CN=billing,O=Example Corp,C=US").as_deref(),
            Ok("CN=billing,O=Example Corp,C=US")
        );
    }

    #[test]
    fn types_are_case_insensitive_and_spaces_around_separators_do_not_count() {
        assert_eq!(
            canonical_dn("cn = billing , o=Example Corp, c=US").as_deref(),
            Ok("CN=billing,O=Example Corp,C=US")
        );
        assert_eq!(canonical_dn("2.5.4.3=billing").as_deref(), Ok("CN=billing"));
    }

    #[test]
    fn escaped_separators_stay_in_the_value_rfc4514_2_4() {
        assert_eq!(canonical_dn(r"CN=a\,b,O=x").as_deref(), Ok(r"CN=a\,b,O=x"));
        assert_eq!(canonical_dn(r"CN=a\2Cb").as_deref(), Ok(r"CN=a\,b"));
        assert_eq!(canonical_dn("CN=a+UID=7,O=x").as_deref(), Ok("CN=a+UID=7,O=x"));
    }

    #[test]
    fn values_keep_their_case() {
        assert_ne!(canonical_dn("CN=Billing"), canonical_dn("CN=billing"));
    }

    #[test]
    fn malformed_names_are_refused_with_a_reason() {
        for bad in ["", "CN", "=x", "CN=a,,O=b", "FOO=bar", r"CN=a\"] {
            assert!(canonical_dn(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_certificates_subject_reads_last_rdn_first() {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CountryName, "US");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example, Inc");
        params.distinguished_name.push(rcgen::DnType::CommonName, "billing");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).expect("parses");
        let dn = certificate_dn(parsed.subject()).expect("string values");
        assert_eq!(dn, r"CN=billing,O=Example\, Inc,C=US");
        assert_eq!(canonical_dn(&dn).as_deref(), Ok(dn.as_str()));
    }
}
