//! Bearer JWTs from an identity provider: signatures checked against the keys of a JWKS file
//! or one PEM public key (RSA, EC or Ed25519; shared-secret HMAC tokens are refused), `exp`,
//! `nbf`, `iss` and `aud` checked, the user and roles read from configured claims.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::Value;

use super::auth::AuthError;

/// `[jwt]` of the server config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// A JWKS file (`{"keys": [...]}`), as identity providers publish them.
    #[serde(default)]
    pub jwks: Option<PathBuf>,
    /// Or one PEM public key (`-----BEGIN PUBLIC KEY-----`) …
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// … and the algorithms it signs with (`RS256`, `ES256`, `EdDSA`, …).
    #[serde(default)]
    pub algorithms: Vec<Algorithm>,
    /// The `iss` tokens must carry (unchecked when omitted).
    #[serde(default)]
    pub issuer: Option<String>,
    /// `aud` values accepted (unchecked when empty; a token with an `aud` is then refused).
    #[serde(default)]
    pub audience: Vec<String>,
    /// The claim naming the user (a name, or a dotted path such as `realm_access.user`).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// The claim listing the user's roles (an array, or a space/comma separated string).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Claim values → roles of `[[roles]]` (values not listed are taken as role names).
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_user_claim() -> String {
    "sub".into()
}

fn default_roles_claim() -> String {
    "roles".into()
}

fn default_leeway() -> u64 {
    60
}

/// Who a verified token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    /// The user claim's value.
    pub user: String,
    /// The roles claim's values, mapped by `role_map`.
    pub roles: Vec<String>,
    /// `exp`, seconds since the epoch.
    pub expires: u64,
}

struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// Checks bearer JWTs.
pub struct JwtVerifier {
    keys: Vec<Key>,
    validation: Validation,
    user_claim: String,
    roles_claim: String,
    role_map: BTreeMap<String, String>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("user_claim", &self.user_claim)
            .field("roles_claim", &self.roles_claim)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// The verifier a `[jwt]` section describes (files relative to `base`).
    pub fn from_config(config: &JwtConfig, base: &Path) -> Result<Self, String> {
        let read = |p: &Path| {
            let path = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            };
            std::fs::read(&path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
        };
        let keys = match (&config.jwks, &config.public_key) {
            (Some(jwks), None) => keys_of_jwks(&read(jwks)?)
                .map_err(|e| format!("[jwt] jwks {}: {e}", jwks.display()))?,
            (None, Some(pem)) => vec![
                key_of_pem(&read(pem)?, &config.algorithms)
                    .map_err(|e| format!("[jwt] public_key {}: {e}", pem.display()))?,
            ],
            _ => return Err("[jwt] needs either jwks or public_key (not both)".into()),
        };
        if config.jwks.is_some() && !config.algorithms.is_empty() {
            return Err("[jwt] algorithms go with public_key; a JWKS names its own".into());
        }
        // algorithms are set per key when a token is checked
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = config.leeway_secs;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if config.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&config.audience);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtVerifier {
            keys,
            validation,
            user_claim: config.user_claim.clone(),
            roles_claim: config.roles_claim.clone(),
            role_map: config.role_map.clone(),
        })
    }

    /// Checks a token: its signature by a configured key (by `kid` and algorithm), then its
    /// claims.
    pub fn verify(&self, token: &str) -> Result<JwtIdentity, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Rejected("the bearer token is not a JWT".into()))?;
        let mut last = None;
        for k in &self.keys {
            if let (Some(want), Some(have)) = (&header.kid, &k.kid)
                && want != have
            {
                continue;
            }
            // the key's own algorithms only: no algorithm confusion
            if !k.algorithms.contains(&header.alg) {
                continue;
            }
            let mut validation = self.validation.clone();
            validation.algorithms = vec![header.alg];
            match jsonwebtoken::decode::<Value>(token, &k.key, &validation) {
                Ok(data) => return self.identity(&data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => last = Some(e),
                Err(e) => return Err(rejected(&e)),
            }
        }
        Err(match last {
            Some(e) => rejected(&e),
            None => AuthError::Rejected(
                "no configured key matches the token's key id and algorithm".into(),
            ),
        })
    }

    fn identity(&self, claims: &Value) -> Result<JwtIdentity, AuthError> {
        let user = claim(claims, &self.user_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                AuthError::Rejected(format!("the token has no {:?} claim", self.user_claim))
            })?;
        let values: Vec<&str> = match claim(claims, &self.roles_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => s.split([' ', ',']).filter(|r| !r.is_empty()).collect(),
            _ => Vec::new(),
        };
        let mut roles: Vec<String> = values
            .into_iter()
            .map(|v| self.role_map.get(v).map_or(v, String::as_str).to_string())
            .collect();
        roles.sort();
        roles.dedup();
        Ok(JwtIdentity {
            user: user.to_string(),
            roles,
            expires: claims.get("exp").and_then(Value::as_u64).unwrap_or(0),
        })
    }
}

/// Whether a bearer token is shaped like a JWT (three dot-separated parts), not one of the
/// server's own tokens.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

fn keys_of_jwks(json: &[u8]) -> Result<Vec<Key>, String> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            continue;
        }
        // shared secrets ("oct") would let anyone who can read the file mint tokens
        if matches!(
            jwk.algorithm,
            AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
        ) {
            continue;
        }
        let id = jwk.common.key_id.as_deref().unwrap_or("(no kid)");
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {id}: {e}"))?;
        let algorithms = match jwk.common.key_algorithm {
            Some(alg) => vec![Algorithm::try_from(alg).map_err(|e| format!("key {id}: {e}"))?],
            None => key.family().algorithms().to_vec(),
        };
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            key,
            algorithms,
        });
    }
    if keys.is_empty() {
        return Err("no signature keys (RSA, EC or OKP) in it".into());
    }
    Ok(keys)
}

fn key_of_pem(pem: &[u8], algorithms: &[Algorithm]) -> Result<Key, String> {
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem)
        .map_err(|e| format!("not a PEM public key: {e}"))?;
    let family = algorithms
        .first()
        .ok_or("name its algorithms (`algorithms = [\"ES256\"]`)")?
        .family();
    if algorithms.iter().any(|a| a.family() != family) {
        return Err("the algorithms of one key are of one family".into());
    }
    // aws-lc-rs reads SubjectPublicKeyInfo DER for RSA, EC and Ed25519 keys alike
    let key = match family {
        AlgorithmFamily::Rsa => DecodingKey::from_rsa_der(&spki),
        AlgorithmFamily::Ec => DecodingKey::from_ec_der(&spki),
        AlgorithmFamily::Ed => DecodingKey::from_ed_der(&spki),
        AlgorithmFamily::Hmac => return Err("shared-secret (HMAC) tokens are not accepted".into()),
    };
    Ok(Key {
        kid: None,
        key,
        algorithms: algorithms.to_vec(),
    })
}

/// A claim by its full name (`https://example.org/roles`), else by a dotted path
/// (`realm_access.roles`).
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    claims
        .get(name)
        .or_else(|| name.split('.').try_fold(claims, |v, part| v.get(part)))
}

/// Why a token was refused (every refusal is UNAUTHENTICATED).
fn rejected(e: &JwtError) -> AuthError {
    let why = match e.kind() {
        ErrorKind::ExpiredSignature => return AuthError::Expired,
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_string(),
        ErrorKind::InvalidIssuer => "the token's issuer is not accepted".to_string(),
        ErrorKind::InvalidAudience => "the token's audience is not accepted".to_string(),
        ErrorKind::MissingRequiredClaim(c) => format!("the token has no {c} claim"),
        ErrorKind::InvalidClaimFormat(c) => format!("the token's {c} claim is malformed"),
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::UnsupportedAlgorithm => "the token's signature does not verify".to_string(),
        _ => "the bearer token is not a valid JWT".to_string(),
    };
    AuthError::Rejected(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};

    struct Issuer {
        signer: EncodingKey,
        jwks: String,
    }

    fn issuer(kid: &str) -> Issuer {
        let kp = rcgen::KeyPair::generate().unwrap();
        let raw = kp.public_key_raw();
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
        }]});
        Issuer {
            signer: EncodingKey::from_ec_der(kp.serialized_der()),
            jwks: jwks.to_string(),
        }
    }

    fn mint(i: &Issuer, kid: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        encode(&header, &claims, &i.signer).unwrap()
    }

    fn verifier(i: &Issuer, extra: &str) -> JwtVerifier {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwks.json"), &i.jwks).unwrap();
        let config: JwtConfig = toml::from_str(&format!(
            "jwks = \"jwks.json\"\nissuer = \"https://idp.test\"\naudience = [\"vcfq\"]\n{extra}"
        ))
        .unwrap();
        JwtVerifier::from_config(&config, dir.path()).unwrap()
    }

    #[test]
    fn good_expired_forged_and_foreign_tokens() {
        let idp = issuer("k1");
        let v = verifier(&idp, "role_map = { \"lab-analysts\" = \"analyst\" }");
        let now = get_current_timestamp();
        let claims = |exp: u64| {
            serde_json::json!({"sub": "carol", "iss": "https://idp.test", "aud": "vcfq",
                               "exp": exp, "roles": ["lab-analysts", "viewer"]})
        };
        let who = v.verify(&mint(&idp, "k1", claims(now + 600))).unwrap();
        assert_eq!(who.user, "carol");
        assert_eq!(who.roles, ["analyst", "viewer"]);
        assert_eq!(
            v.verify(&mint(&idp, "k1", claims(now - 3600))),
            Err(AuthError::Expired)
        );
        let other = issuer("k1");
        let forged = v
            .verify(&mint(&other, "k1", claims(now + 600)))
            .unwrap_err();
        assert!(forged.to_string().contains("signature"), "{forged}");
        let unknown_kid = v.verify(&mint(&idp, "k2", claims(now + 600))).unwrap_err();
        assert!(unknown_kid.to_string().contains("key id"), "{unknown_kid}");
        let mut wrong_aud = claims(now + 600);
        wrong_aud["aud"] = "other".into();
        let e = v.verify(&mint(&idp, "k1", wrong_aud)).unwrap_err();
        assert!(e.to_string().contains("audience"), "{e}");
        let mut no_iss = claims(now + 600);
        no_iss.as_object_mut().unwrap().remove("iss");
        let e = v.verify(&mint(&idp, "k1", no_iss)).unwrap_err();
        assert!(e.to_string().contains("iss"), "{e}");
        let e = v.verify("not-a-jwt").unwrap_err();
        assert!(e.to_string().contains("not a JWT"), "{e}");
    }

    #[test]
    fn claims_by_path_and_as_strings() {
        let idp = issuer("k1");
        let v = verifier(
            &idp,
            "user_claim = \"preferred_username\"\nroles_claim = \"realm_access.roles\"",
        );
        let now = get_current_timestamp();
        let token = mint(
            &idp,
            "k1",
            serde_json::json!({"preferred_username": "dan", "iss": "https://idp.test",
                "aud": ["x", "vcfq"], "exp": now + 60, "realm_access": {"roles": "a b,c"}}),
        );
        let who = v.verify(&token).unwrap();
        assert_eq!(
            (who.user.as_str(), who.roles),
            ("dan", vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn shapes_of_tokens() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("0123456789abcdef"));
    }
}
