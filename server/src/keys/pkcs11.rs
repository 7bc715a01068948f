//! A signing key that never leaves an HSM, reached through PKCS#11
//! (`--signing-key pkcs11:… --pkcs11-module PATH --pkcs11-pin-file FILE`).
//!
//! Only ES256: the key is an EC P-256 private key object on a token, found by
//! the RFC 7512 URI's `token`/`serial`/`slot-id` and `object`/`id`, with its
//! public key object of the same label or id. Tessera hashes the JWS signing
//! input and the HSM signs the digest (`CKM_ECDSA`), whose raw `r || s` is
//! already the JWS form. Sessions are opened once, one per core, and each is
//! used by one signer at a time (a PKCS#11 session is not thread safe).

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

/// The DER of the P-256 curve's OID, as `CKA_EC_PARAMS` holds it.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// What a `pkcs11:` URI (RFC 7512) names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token's label.
    pub token: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `slot-id`.
    pub slot_id: Option<u64>,
    /// `object`: the key's label.
    pub object: Option<String>,
    /// `id`: the key's `CKA_ID`.
    pub id: Option<Vec<u8>>,
}

impl Pkcs11Uri {
    /// Parses `pkcs11:ATTR=VALUE;…`.
    ///
    /// # Errors
    /// What is wrong: not a `pkcs11:` URI, a PIN in it, no key named, a
    /// malformed attribute.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri.strip_prefix("pkcs11:").ok_or_else(|| {
            format!(
                "--signing-key {uri:?} is not a pkcs11: URI (RFC 7512), e.g. pkcs11:token=tessera;object=signing-key"
            )
        })?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if query
            .split('&')
            .any(|q| q.starts_with("pin-value=") || q.starts_with("pin-source="))
        {
            return Err(
                "--signing-key must not carry the PIN (a command line is visible to other users): give it in --pkcs11-pin-file"
                    .into(),
            );
        }
        let mut parsed = Self::default();
        for attribute in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| format!("pkcs11: URI attribute {attribute:?} has no value"))?;
            let value = tessera_proto::percent::decode(value)
                .ok_or_else(|| format!("pkcs11: URI attribute {name} is not well encoded"))?;
            let text =
                || String::from_utf8(value.clone()).map_err(|_| format!("pkcs11: URI attribute {name} is not UTF-8"));
            match name {
                "token" => parsed.token = Some(text()?),
                "serial" => parsed.serial = Some(text()?),
                "slot-id" => {
                    parsed.slot_id = Some(
                        text()?
                            .parse()
                            .map_err(|_| "pkcs11: URI slot-id is not a number".to_owned())?,
                    )
                }
                "object" => parsed.object = Some(text()?),
                "id" => parsed.id = Some(value),
                "type" if text()? == "private" => {}
                "type" => return Err("--signing-key names a private key: type=private, or leave type out".into()),
                // Manufacturer, model, library attributes: they narrow nothing Tessera needs.
                _ => {}
            }
        }
        if parsed.object.is_none() && parsed.id.is_none() {
            return Err("--signing-key names no key: add object=LABEL or id=%XX… to the pkcs11: URI".into());
        }
        Ok(parsed)
    }
}

/// An ES256 private key in an HSM, ready to sign.
pub struct HsmKey {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    key: ObjectHandle,
    /// The public point, uncompressed SEC1 (`04 || x || y`).
    public_point: Vec<u8>,
    /// Keeps the module loaded for as long as the sessions live.
    _context: Pkcs11,
}

impl std::fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmKey")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

fn failed(what: &str) -> impl Fn(Pkcs11Error) -> String + '_ {
    move |e| format!("PKCS#11: {what}: {e}")
}

impl HsmKey {
    /// Loads `module`, logs in to the token `uri` names with the PIN in
    /// `pin_file`, and finds the key and its public half.
    ///
    /// # Errors
    /// A message saying which step failed and what to check.
    pub fn open(uri: &Pkcs11Uri, module: &Path, pin_file: &Path) -> Result<Self, String> {
        let pin = crate::private_files::read_private(pin_file, "the PKCS#11 PIN file", "it unlocks the signing key")?;
        let pin = std::str::from_utf8(&pin)
            .map_err(|_| "the PKCS#11 PIN file is not UTF-8".to_owned())?
            .trim_end_matches(['\n', '\r'])
            .to_owned();
        let context =
            Pkcs11::new(module).map_err(|e| format!("cannot load the PKCS#11 module {}: {e}", module.display()))?;
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(format!("PKCS#11: initialising {}: {e}", module.display())),
        }
        let slot = find_slot(&context, uri)?;
        let first = context.open_ro_session(slot).map_err(failed("opening a session"))?;
        match first.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(Pkcs11Error::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err("PKCS#11: the PIN in --pkcs11-pin-file is not the token's user PIN".into());
            }
            Err(e) => return Err(format!("PKCS#11: logging in: {e}")),
        }
        let key = find_one(&first, uri, ObjectClass::PRIVATE_KEY)?;
        let attributes = first
            .get_attributes(key, &[AttributeType::KeyType, AttributeType::EcParams])
            .map_err(failed("reading the key's type"))?;
        let is_p256 = attributes
            .iter()
            .any(|a| matches!(a, Attribute::KeyType(t) if *t == KeyType::EC))
            && attributes
                .iter()
                .any(|a| matches!(a, Attribute::EcParams(p) if p == P256_PARAMS));
        if !is_p256 {
            return Err("the HSM key is not an EC P-256 key: Tessera signs with ES256 only in an HSM".into());
        }
        let public = find_one(&first, uri, ObjectClass::PUBLIC_KEY)
            .map_err(|e| format!("{e} (the public key object, with the private key's label or id)"))?;
        let public_point = first
            .get_attributes(public, &[AttributeType::EcPoint])
            .map_err(failed("reading the public key"))?
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(point) => Some(point),
                _ => None,
            })
            .and_then(|point| uncompressed_point(&point))
            .ok_or_else(|| "the HSM's public key is not an uncompressed P-256 point".to_owned())?;
        let count = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut sessions = vec![Mutex::new(first)];
        for _ in 1..count {
            sessions.push(Mutex::new(
                context.open_ro_session(slot).map_err(failed("opening a session"))?,
            ));
        }
        Ok(Self {
            sessions,
            next: AtomicUsize::new(0),
            key,
            public_point,
            _context: context,
        })
    }

    /// The public point, uncompressed SEC1.
    pub fn public_point(&self) -> &[u8] {
        &self.public_point
    }

    /// Signs `message` (ES256): SHA-256 here, ECDSA in the HSM. Returns `r || s`.
    ///
    /// # Errors
    /// When the HSM fails to sign.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message);
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        // A free session if there is one, else wait for the one in turn.
        let session = (0..self.sessions.len())
            .find_map(|i| self.sessions[(start + i) % self.sessions.len()].try_lock().ok())
            .unwrap_or_else(|| {
                self.sessions[start % self.sessions.len()]
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            });
        let signature = session
            .sign(&Mechanism::Ecdsa, self.key, digest.as_ref())
            .map_err(failed("signing"))?;
        if signature.len() != 64 {
            return Err(format!("PKCS#11: an ES256 signature of {} bytes", signature.len()));
        }
        Ok(signature)
    }
}

fn find_slot(context: &Pkcs11, uri: &Pkcs11Uri) -> Result<cryptoki::slot::Slot, String> {
    let slots = context.get_slots_with_token().map_err(failed("listing slots"))?;
    for slot in slots {
        if uri.slot_id.is_some_and(|id| slot.id() != id) {
            continue;
        }
        let info = context.get_token_info(slot).map_err(failed("reading a token"))?;
        let label_matches = uri.token.as_deref().is_none_or(|t| info.label().trim_end() == t);
        let serial_matches = uri
            .serial
            .as_deref()
            .is_none_or(|s| info.serial_number().trim_end() == s);
        if label_matches && serial_matches {
            return Ok(slot);
        }
    }
    Err(format!(
        "PKCS#11: no token matches {} (softhsm2-util --show-slots, or pkcs11-tool --list-slots, lists them)",
        uri.token
            .as_deref()
            .map_or_else(|| "the URI".to_owned(), |t| format!("token={t}"))
    ))
}

fn find_one(session: &Session, uri: &Pkcs11Uri, class: ObjectClass) -> Result<ObjectHandle, String> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.clone().into_bytes()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let found = session.find_objects(&template).map_err(failed("finding the key"))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!(
            "PKCS#11: no {} key on the token matches the URI's object/id",
            if class == ObjectClass::PRIVATE_KEY {
                "private"
            } else {
                "public"
            }
        )),
        _ => Err("PKCS#11: more than one key matches the URI: add id= or a more precise object=".into()),
    }
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the SEC1 point (some modules
/// give the bare point): the 65-byte uncompressed point either way.
fn uncompressed_point(value: &[u8]) -> Option<Vec<u8>> {
    match value {
        [0x04, 65, rest @ ..] if rest.len() == 65 && rest[0] == 0x04 => Some(rest.to_vec()),
        point if point.len() == 65 && point[0] == 0x04 => Some(point.to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pkcs11_uri_names_the_token_and_the_key() {
        let uri = Pkcs11Uri::parse("pkcs11:token=tessera;object=signing%20key;id=%01%02;type=private").unwrap();
        assert_eq!(uri.token.as_deref(), Some("tessera"));
        assert_eq!(uri.object.as_deref(), Some("signing key"));
        assert_eq!(uri.id.as_deref(), Some(&[1u8, 2][..]));
    }

    #[test]
    fn a_pkcs11_uri_with_a_pin_or_without_a_key_is_refused() {
        let err = Pkcs11Uri::parse("pkcs11:token=t;object=k?pin-value=1234").unwrap_err();
        assert!(err.contains("--pkcs11-pin-file"), "{err}");
        let err = Pkcs11Uri::parse("pkcs11:token=t").unwrap_err();
        assert!(err.contains("object="), "{err}");
        assert!(Pkcs11Uri::parse("file:///key.pem").is_err());
    }

    #[test]
    fn an_ec_point_reads_with_or_without_its_der_wrapping() {
        let point: Vec<u8> = std::iter::once(4).chain(std::iter::repeat_n(7, 64)).collect();
        let wrapped: Vec<u8> = [4, 65].into_iter().chain(point.iter().copied()).collect();
        assert_eq!(uncompressed_point(&wrapped), Some(point.clone()));
        assert_eq!(uncompressed_point(&point), Some(point));
        assert_eq!(uncompressed_point(&[4, 1, 2]), None);
    }
}
