//! Who a client certificate names (mutual TLS): its subject's common names and its
//! subjectAltName e-mail, DNS and URI entries, read from the DER that rustls has verified
//! against the configured client CA. Walks the few DER structures it needs (bounds-checked,
//! nothing for what it cannot read) rather than linking an X.509 parser.

use serde::Deserialize;

/// Which name of a client certificate is its user's name (`[tls] client_user`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertName {
    /// The subject's common name (CN).
    #[default]
    Cn,
    /// A subjectAltName e-mail address.
    Email,
    /// A subjectAltName DNS name.
    Dns,
    /// A subjectAltName URI (a SPIFFE id, say).
    Uri,
}

/// The user a certificate names: the one name of that kind it carries (a certificate with
/// none, or with several different ones, names nobody).
pub fn user_of(der: &[u8], which: CertName) -> Result<String, String> {
    let names = cert_names(der).ok_or("the client certificate cannot be read")?;
    let (list, what) = match which {
        CertName::Cn => (names.common_names, "subject CN"),
        CertName::Email => (names.emails, "e-mail subjectAltName"),
        CertName::Dns => (names.dns, "DNS subjectAltName"),
        CertName::Uri => (names.uris, "URI subjectAltName"),
    };
    let mut list = list;
    list.dedup();
    match list.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("the client certificate has no {what}")),
        _ => Err(format!("the client certificate has several {what}s")),
    }
}

/// What a client certificate says about its holder.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CertNames {
    /// Subject CN values, in DER order (usually one).
    pub common_names: Vec<String>,
    /// SAN rfc822Name (e-mail) values.
    pub emails: Vec<String>,
    /// SAN dNSName values.
    pub dns: Vec<String>,
    /// SAN uniformResourceIdentifier values (e.g. SPIFFE ids).
    pub uris: Vec<String>,
}

/// One DER TLV: (tag, contents, rest). Definite lengths of at most 4 length bytes.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Each element of a constructed value's contents.
fn elements(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, value, rest) = tlv(input)?;
        input = rest;
        Some((tag, value))
    })
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const OID_CN: &[u8] = &[0x55, 0x04, 0x03]; // 2.5.4.3
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11]; // 2.5.29.17

/// A DirectoryString as text (UTF8String, PrintableString, IA5String, T61String, BMPString).
fn directory_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x16 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        0x14 => Some(bytes.iter().map(|&b| char::from(b)).collect()), // T61 as Latin-1
        0x1e if bytes.len().is_multiple_of(2) => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The CNs of a Name (the contents of its SEQUENCE: RDN SETs of AttributeTypeAndValue).
fn common_names(name: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for (tag, rdn) in elements(name) {
        if tag != SET {
            continue;
        }
        for (tag, atv) in elements(rdn) {
            if tag != SEQUENCE {
                continue;
            }
            let mut parts = elements(atv);
            if let (Some((OID, oid)), Some((vtag, value))) = (parts.next(), parts.next())
                && oid == OID_CN
            {
                out.extend(directory_string(vtag, value));
            }
        }
    }
    out
}

/// Names from a DER certificate (None when it is not an X.509 v3 structure this can walk).
pub fn cert_names(der: &[u8]) -> Option<CertNames> {
    let (SEQUENCE, cert, _) = tlv(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut fields = elements(tbs).peekable();
    if fields.peek().map(|(t, _)| *t) == Some(0xa0) {
        fields.next(); // [0] version
    }
    let _serial = fields.next()?;
    let _signature = fields.next()?;
    let _issuer = fields.next()?;
    let _validity = fields.next()?;
    let (SEQUENCE, subject) = fields.next()? else {
        return None;
    };
    let mut names = CertNames {
        common_names: common_names(subject),
        ..CertNames::default()
    };
    let _spki = fields.next()?;
    for (tag, value) in fields {
        if tag != 0xa3 {
            continue; // [1] issuerUniqueID, [2] subjectUniqueID
        }
        let Some((SEQUENCE, extensions, _)) = tlv(value) else {
            continue;
        };
        for (tag, ext) in elements(extensions) {
            if tag != SEQUENCE {
                continue;
            }
            let mut parts = elements(ext);
            let Some((OID, oid)) = parts.next() else {
                continue;
            };
            if oid != OID_SAN {
                continue;
            }
            // critical BOOLEAN is optional; the value is the OCTET STRING
            let Some((_, octets)) = parts.find(|(t, _)| *t == OCTET_STRING) else {
                continue;
            };
            let Some((SEQUENCE, general_names, _)) = tlv(octets) else {
                continue;
            };
            for (tag, bytes) in elements(general_names) {
                let Ok(text) = std::str::from_utf8(bytes) else {
                    continue;
                };
                match tag {
                    0x81 => names.emails.push(text.to_owned()), // [1] rfc822Name
                    0x82 => names.dns.push(text.to_owned()),    // [2] dNSName
                    0x86 => names.uris.push(text.to_owned()),   // [6] URI
                    _ => {}                                     // IP, otherName, dirName, …
                }
            }
        }
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate for `CN=alice` with an e-mail, a DNS and a URI subjectAltName, made the
    /// way a lab CA would make one.
    fn alice() -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(vec!["alice.clients.example.org".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Lab");
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            "alice@example.org".try_into().unwrap(),
        ));
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://example.org/alice".try_into().unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn names_of_a_certificate() {
        let der = alice();
        let names = cert_names(&der).unwrap();
        assert_eq!(names.common_names, ["alice"]);
        assert_eq!(names.emails, ["alice@example.org"]);
        assert_eq!(names.dns, ["alice.clients.example.org"]);
        assert_eq!(names.uris, ["spiffe://example.org/alice"]);
        assert_eq!(user_of(&der, CertName::Cn).unwrap(), "alice");
        assert_eq!(
            user_of(&der, CertName::Uri).unwrap(),
            "spiffe://example.org/alice"
        );
    }

    #[test]
    fn truncated_or_foreign_bytes_name_nobody() {
        let der = alice();
        for n in 0..der.len() {
            let _ = cert_names(&der[..n]);
        }
        assert_eq!(cert_names(b""), None);
        assert_eq!(cert_names(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert!(user_of(b"junk", CertName::Cn).is_err());
    }
}
