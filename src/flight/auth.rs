//! Authentication: basic username/password (Argon2 hashes from the config file) exchanged in
//! the Flight handshake for an expiring bearer token; bearer JWTs of an identity provider
//! ([`super::jwt`]); client certificates of mutual TLS mapped to users ([`super::certs`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, PasswordHash};
use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

/// Standard base64, padded or not (Go clients such as ADBC's send it unpadded).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

use super::config::UserConfig;
use super::jwt::{JwtIdentity, JwtVerifier, looks_like_jwt};

/// Why a request was not let in. Mapped to gRPC codes in [`super::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials where they are required.
    #[error("authentication required: connect with a username and password")]
    Missing,
    /// Unknown user or wrong password (not told apart, on purpose).
    #[error("invalid username or password")]
    BadCredentials,
    /// The `authorization` header is not `Basic …` or `Bearer …`.
    #[error("malformed authorization header: {0}")]
    Malformed(String),
    /// The bearer token is unknown (or was issued by an earlier server run).
    #[error("unknown bearer token: log in again")]
    UnknownToken,
    /// The bearer token has expired.
    #[error("bearer token expired: log in again")]
    Expired,
    /// A bearer JWT or a client certificate was refused (why, without secrets).
    #[error("{0}")]
    Rejected(String),
    /// The server cannot make a token (no OS randomness).
    #[error("{0}")]
    Unavailable(String),
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user who logged in; `token` is their bearer token.
    User {
        /// Login name.
        name: String,
        /// The bearer token of this login (one login, one session).
        token: String,
    },
    /// A user who sends basic credentials with every call instead of a handshake.
    Basic {
        /// Login name.
        name: String,
    },
    /// A caller with an identity provider's JWT (its roles come with it).
    Jwt {
        /// The token's user and roles.
        identity: JwtIdentity,
        /// The token (its session's key).
        token: String,
    },
    /// A caller identified by its client certificate alone (no credentials sent).
    Certificate {
        /// The user the certificate names.
        name: String,
    },
    /// No credentials, allowed by `allow_anonymous`.
    Anonymous,
}

struct TokenEntry {
    user: String,
    expires: Instant,
}

/// Users, their password hashes and the tokens handed out; the JWT verifier when JWTs are
/// accepted.
pub struct Authenticator {
    /// Users by name, with their password hash (`None`: no password login).
    users: HashMap<String, Option<String>>,
    allow_anonymous: bool,
    ttl: Duration,
    tokens: Mutex<HashMap<String, TokenEntry>>,
    jwt: Option<JwtVerifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("allow_anonymous", &self.allow_anonymous)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Users from the config file; tokens live `ttl`.
    pub fn new(users: &[UserConfig], allow_anonymous: bool, ttl: Duration) -> Self {
        Authenticator {
            users: users
                .iter()
                .map(|u| (u.name.clone(), u.password_hash.clone()))
                .collect(),
            allow_anonymous,
            ttl,
            tokens: Mutex::new(HashMap::new()),
            jwt: None,
        }
    }

    /// Also accepts bearer JWTs that `verifier` accepts.
    pub fn with_jwt(mut self, verifier: JwtVerifier) -> Self {
        self.jwt = Some(verifier);
        self
    }

    /// Checks a bearer JWT (when JWTs are accepted).
    pub fn verify_jwt(&self, token: &str) -> Result<JwtIdentity, AuthError> {
        match &self.jwt {
            Some(v) => v.verify(token),
            None => Err(AuthError::UnknownToken),
        }
    }

    /// A new bearer token for the user a verified client certificate names; the user must be
    /// one of `[[users]]`.
    pub fn login_certificate(&self, user: &str) -> Result<(String, String), AuthError> {
        self.certificate_user(user)?;
        self.issue(user)
    }

    /// Checks that a certificate's user is a configured user.
    fn certificate_user(&self, user: &str) -> Result<(), AuthError> {
        if self.users.contains_key(user) {
            Ok(())
        } else {
            Err(AuthError::Rejected(format!(
                "the client certificate names {user:?}, who is not a user of this server"
            )))
        }
    }

    /// Checks `Basic base64(user:password)` and hands out a new bearer token.
    pub fn login_basic(&self, header: &str) -> Result<(String, String), AuthError> {
        let (user, password) = parse_basic(header)?;
        self.login(&user, &password)
    }

    /// Checks a username and password and hands out a new bearer token.
    pub fn login(&self, user: &str, password: &str) -> Result<(String, String), AuthError> {
        self.verify(user, password)?;
        self.issue(user)
    }

    /// A token for a client that handshakes without credentials, when anonymous access is on.
    pub fn login_anonymous(&self) -> Result<(String, String), AuthError> {
        if !self.allow_anonymous {
            return Err(AuthError::Missing);
        }
        self.issue("")
    }

    fn verify(&self, user: &str, password: &str) -> Result<(), AuthError> {
        let hash = self
            .users
            .get(user)
            .and_then(Option::as_ref)
            .ok_or(AuthError::BadCredentials)?;
        let parsed = PasswordHash::new(hash).map_err(|_| AuthError::BadCredentials)?;
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .map_err(|_| AuthError::BadCredentials)
    }

    fn issue(&self, user: &str) -> Result<(String, String), AuthError> {
        let token = new_token()?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.insert(
            token.clone(),
            TokenEntry {
                user: user.to_string(),
                expires: Instant::now() + self.ttl,
            },
        );
        Ok((user.to_string(), token))
    }

    /// Who sent a request with this `authorization` header (or none), over a connection
    /// whose verified client certificate names `certificate_user` (mutual TLS). Credentials
    /// sent win over the certificate.
    pub fn principal(
        &self,
        header: Option<&str>,
        certificate_user: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let Some(header) = header else {
            if let Some(name) = certificate_user {
                self.certificate_user(name)?;
                return Ok(Principal::Certificate {
                    name: name.to_string(),
                });
            }
            return if self.allow_anonymous {
                Ok(Principal::Anonymous)
            } else {
                Err(AuthError::Missing)
            };
        };
        if header.starts_with("Basic ") || header.starts_with("basic ") {
            // some clients send basic credentials on every call instead of a handshake
            let (user, password) = parse_basic(header)?;
            self.verify(&user, &password)?;
            return Ok(Principal::Basic { name: user });
        }
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| AuthError::Malformed("expected `Bearer <token>`".into()))?
            .trim();
        if self.jwt.is_some() && looks_like_jwt(token) {
            return Ok(Principal::Jwt {
                identity: self.verify_jwt(token)?,
                token: token.to_string(),
            });
        }
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let entry = tokens.get(token).ok_or(AuthError::UnknownToken)?;
        if entry.expires <= Instant::now() {
            tokens.remove(token);
            return Err(AuthError::Expired);
        }
        Ok(Principal::User {
            name: entry.user.clone(),
            token: token.to_string(),
        })
    }

    /// Forgets expired tokens; returns them so that their sessions can be dropped too.
    pub fn expire(&self) -> Vec<String> {
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = tokens
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for token in &gone {
            tokens.remove(token);
        }
        gone
    }

    /// Whether clients may connect without credentials.
    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }
}

/// User and password of a `Basic base64(user:password)` header.
pub fn parse_basic(header: &str) -> Result<(String, String), AuthError> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
        .ok_or_else(|| AuthError::Malformed("expected `Basic <credentials>`".into()))?;
    let decoded = BASE64
        .decode(encoded.trim())
        .map_err(|_| AuthError::Malformed("credentials are not base64".into()))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| AuthError::Malformed("credentials are not UTF-8".into()))?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| AuthError::Malformed("credentials are not user:password".into()))?;
    Ok((user.to_string(), password.to_string()))
}

/// A random 256-bit token, hex.
fn new_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| AuthError::Unavailable(format!("no random numbers for a token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// An Argon2id PHC hash of `password` for the config file.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash password: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(ttl: Duration) -> Authenticator {
        let users = vec![
            UserConfig {
                name: "alice".into(),
                password_hash: Some(hash_password("s3cret!").unwrap()),
                roles: Vec::new(),
            },
            UserConfig {
                name: "robot".into(),
                password_hash: None,
                roles: Vec::new(),
            },
        ];
        Authenticator::new(&users, false, ttl)
    }

    #[test]
    fn basic_login_gives_a_token_that_identifies_the_user() {
        let a = auth(Duration::from_secs(60));
        let header = format!("Basic {}", BASE64.encode("alice:s3cret!"));
        let (user, token) = a.login_basic(&header).unwrap();
        // unpadded, as Go clients send it
        let unpadded = header.trim_end_matches('=');
        assert_ne!(unpadded, header);
        assert!(a.login_basic(unpadded).is_ok());
        assert_eq!(user, "alice");
        assert_eq!(token.len(), 64);
        assert_eq!(
            a.principal(Some(&format!("Bearer {token}")), None).unwrap(),
            Principal::User {
                name: "alice".into(),
                token: token.clone()
            }
        );
        let (_, second) = a.login("alice", "s3cret!").unwrap();
        assert_ne!(token, second, "each login is its own session");
    }

    #[test]
    fn wrong_password_unknown_user_and_missing_credentials_are_refused() {
        let a = auth(Duration::from_secs(60));
        assert_eq!(
            a.login("alice", "wrong").unwrap_err(),
            AuthError::BadCredentials
        );
        assert_eq!(
            a.login("bob", "s3cret!").unwrap_err(),
            AuthError::BadCredentials
        );
        assert_eq!(a.principal(None, None).unwrap_err(), AuthError::Missing);
        assert_eq!(
            a.principal(Some("Bearer nope"), None).unwrap_err(),
            AuthError::UnknownToken
        );
        assert!(matches!(
            a.principal(Some("Token x"), None).unwrap_err(),
            AuthError::Malformed(_)
        ));
        // without JWTs configured, a JWT is just an unknown token
        assert_eq!(
            a.principal(Some("Bearer a.b.c"), None).unwrap_err(),
            AuthError::UnknownToken
        );
    }

    #[test]
    fn certificates_name_configured_users_and_credentials_win() {
        let a = auth(Duration::from_secs(60));
        assert_eq!(
            a.principal(None, Some("robot")).unwrap(),
            Principal::Certificate {
                name: "robot".into()
            }
        );
        assert!(matches!(
            a.principal(None, Some("mallory")).unwrap_err(),
            AuthError::Rejected(m) if m.contains("not a user")
        ));
        let header = format!("Basic {}", BASE64.encode("alice:s3cret!"));
        assert_eq!(
            a.principal(Some(&header), Some("robot")).unwrap(),
            Principal::Basic {
                name: "alice".into()
            }
        );
        // a user without a password logs in by certificate only
        assert_eq!(a.login("robot", "").unwrap_err(), AuthError::BadCredentials);
        assert!(a.login_certificate("robot").is_ok());
    }

    #[test]
    fn tokens_expire() {
        let a = auth(Duration::ZERO);
        let (_, token) = a.login("alice", "s3cret!").unwrap();
        assert_eq!(
            a.principal(Some(&format!("Bearer {token}")), None)
                .unwrap_err(),
            AuthError::Expired
        );
        let (_, token) = a.login("alice", "s3cret!").unwrap();
        assert_eq!(a.expire(), vec![token]);
    }
}
