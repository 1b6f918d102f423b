//! The server's configuration file (TOML): address, TLS, users, tables registered at start,
//! limits. Every key is optional; unknown keys are rejected so that a typo is not ignored.
//!
//! ```toml
//! addr = "0.0.0.0:50051"
//! allow_anonymous = false
//! token_ttl_secs = 43200
//!
//! [tls]
//! cert = "server.crt"
//! key = "server.key"
//! client_ca = "clients-ca.pem"       # mutual TLS: client certificates signed by this CA
//! client_auth = "required"           # or "optional" (then credentials or anonymous access)
//! client_user = "cn"                 # the certificate's name that is the user: cn, email, dns, uri
//!
//! [jwt]                    # bearer JWTs of an identity provider
//! jwks = "idp-jwks.json"   # or public_key = "idp.pem" + algorithms = ["ES256"]
//! issuer = "https://idp.example.org/"
//! audience = ["vcfq"]
//! user_claim = "sub"
//! roles_claim = "roles"    # values naming [[roles]] (or mapped by role_map)
//!
//! [metrics]
//! addr = "127.0.0.1:9464"  # Prometheus text at http://addr/metrics
//! token = "…"              # scrapes then send `Authorization: Bearer …`
//!
//! [tracing]                # OTLP traces (the OTEL_* variables work too)
//! endpoint = "http://127.0.0.1:4317"
//! protocol = "grpc"        # or "http/protobuf"
//!
//! [[users]]
//! name = "alice"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"   # from `vcfq hash-password`
//! roles = ["analyst"]
//!
//! [files]                  # what clients may reach by path (none when omitted)
//! read = ["data"]          # paths as tables, read_vcf, CREATE EXTERNAL TABLE … LOCATION
//! write = ["exports"]      # COPY … TO
//!
//! [streams]
//! allow = ["iggy://127.0.0.1:8090", "localhost:9092"]   # stream tables clients may create
//!
//! [[roles]]                # without any, every user has every privilege within the roots
//! name = "analyst"
//! [[roles.grants]]
//! tables = ["calls", "cohort_*"]
//! privileges = ["select"]
//! masks = { genotypes = "NULL" }
//! row_filter = "chrom = 'chr22'"
//! [[roles.grants]]
//! locations = ["data/public"]
//! privileges = ["select", "create"]
//!
//! [audit]
//! path = "audit.jsonl"     # every statement and login, hash-chained (`vcfq audit verify`)
//!
//! [[tables]]
//! name = "calls"
//! location = "data/calls.vcf.gz"     # relative to this file
//! format = "vcf"                      # vcf, bcf, parquet, csv, json, …
//! options = { samples = "NA12878" }
//!
//! startup = ["SET datafusion.execution.batch_size = 4096"]
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::certs::CertName;
use super::jwt::{JwtConfig, JwtVerifier};
use super::metrics::MetricsConfig;
use crate::access::paths::FileRoots;
use crate::access::rules::{RoleConfig, Rules};
use crate::telemetry::TraceSettings;

/// Everything `vcfq serve` reads from its `--config` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on (`--addr` overrides it). Port 0 picks a free port.
    pub addr: Option<SocketAddr>,
    /// Let clients in without a handshake (each connection still gets its own session).
    pub allow_anonymous: bool,
    /// Lifetime of a bearer token handed out by the handshake, in seconds.
    pub token_ttl_secs: u64,
    /// A session (its settings, temporary tables, prepared statements) idle this long is dropped.
    pub session_idle_secs: u64,
    /// At most this many live sessions; more are refused with RESOURCE_EXHAUSTED.
    pub max_sessions: usize,
    /// Memory that all running queries together may use, in MiB (0: no limit). A query that
    /// needs more fails with RESOURCE_EXHAUSTED instead of taking the machine down.
    pub memory_limit_mb: usize,
    /// On SIGTERM/Ctrl-C, running queries get this many seconds to finish, then are cancelled.
    pub shutdown_grace_secs: u64,
    /// TLS certificate and key (PEM). Without them the server speaks plain gRPC.
    pub tls: Option<TlsConfig>,
    /// Users allowed to log in with basic auth.
    pub users: Vec<UserConfig>,
    /// Tables every session sees from the start.
    pub tables: Vec<TableConfig>,
    /// SQL run in every new session before its first request (`SET …`, `CREATE VIEW …`),
    /// with every table in reach; what it creates is governed by grants as the tables are.
    pub startup: Vec<String>,
    /// Directories clients may read and write files under.
    pub files: FilesConfig,
    /// Stream locations clients may create tables on.
    pub streams: StreamsConfig,
    /// Roles and their grants. Without any, every user may do anything within the file roots
    /// and stream locations; with some, a user may do what its roles grant.
    pub roles: Vec<RoleConfig>,
    /// The roles of anonymous clients (when `allow_anonymous`).
    pub anonymous_roles: Vec<String>,
    /// The audit trail.
    pub audit: Option<AuditConfig>,
    /// Bearer JWTs of an identity provider.
    pub jwt: Option<JwtConfig>,
    /// Prometheus metrics on an HTTP port.
    pub metrics: Option<MetricsConfig>,
    /// OTLP traces.
    pub tracing: Option<TraceSettings>,
    /// A Ballista cluster that runs the sessions' queries.
    pub cluster: Option<ClusterConfig>,
    /// Directory the config file is in; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: None,
            allow_anonymous: false,
            token_ttl_secs: 12 * 3600,
            session_idle_secs: 3600,
            max_sessions: 1024,
            memory_limit_mb: 0,
            shutdown_grace_secs: 10,
            tls: None,
            users: Vec::new(),
            tables: Vec::new(),
            startup: Vec::new(),
            files: FilesConfig::default(),
            streams: StreamsConfig::default(),
            roles: Vec::new(),
            anonymous_roles: Vec::new(),
            audit: None,
            jwt: None,
            metrics: None,
            tracing: None,
            cluster: None,
            base_dir: PathBuf::from("."),
        }
    }
}

/// `[cluster]`: queries run on a Ballista cluster of `vcfq executor`s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The scheduler, `df://host:port` (`vcfq scheduler`); the executors must reach the files
    /// at the paths this server does.
    pub scheduler: String,
}

/// TLS material, PEM files; and mutual TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates must be signed by: mutual TLS.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required (the default with `client_ca`) or optional.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Which name of a client certificate is the user's name.
    #[serde(default)]
    pub client_user: CertName,
}

/// `[tls] client_auth`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Connections without a certificate signed by `client_ca` are refused.
    #[default]
    Required,
    /// A certificate, when sent, must be signed by `client_ca`; without one, clients log in
    /// with credentials (or anonymously, when allowed).
    Optional,
}

/// One user of basic auth.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// Argon2 hash in PHC form (`vcfq hash-password` prints one). Without one the user logs
    /// in by client certificate only.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// The user's roles (`[[roles]]`).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `[files]`: where clients' paths may lead (relative paths are relative to the config file).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Directories whose files clients may read (and make tables over).
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Directories clients may write files into.
    #[serde(default)]
    pub write: Vec<PathBuf>,
}

/// `[streams]`: stream locations clients may make tables on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsConfig {
    /// Location prefixes (`iggy://host:port`, `host:port`), credentials ignored.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `[audit]`: the audit trail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// JSON-lines file appended to (created when missing).
    pub path: PathBuf,
}

/// A table registered at start, as `CREATE EXTERNAL TABLE name STORED AS format LOCATION …`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Table name (case preserved).
    pub name: String,
    /// File, directory, glob or stream location.
    pub location: String,
    /// `STORED AS` format; `vcf` when omitted.
    #[serde(default = "default_format")]
    pub format: String,
    /// `OPTIONS (…)` of the statement.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn default_format() -> String {
    "vcf".to_string()
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, on one line.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ServerConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        config.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        config.check().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Parses TOML text (relative paths stay relative to the working directory).
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().replace('\n', " ").trim().to_string())
    }

    fn check(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for user in &self.users {
            if !names.insert(user.name.as_str()) {
                return Err(format!("user {:?} is listed twice", user.name));
            }
            if let Some(hash) = &user.password_hash {
                argon2::PasswordHash::new(hash).map_err(|e| {
                    format!(
                        "user {:?}: password_hash is not a PHC string ({e}); make one with `vcfq hash-password`",
                        user.name
                    )
                })?;
            }
        }
        if self.users.is_empty() && !self.allow_anonymous && self.jwt.is_none() {
            return Err(
                "no [[users]], no [jwt] and allow_anonymous = false: nobody could connect"
                    .to_string(),
            );
        }
        if let Some(jwt) = &self.jwt {
            JwtVerifier::from_config(jwt, &self.base_dir)?;
        }
        if let Some(ca) = self.tls.as_ref().and_then(|t| t.client_ca.as_ref()) {
            let path = self.resolve(ca);
            let pem = std::fs::read(&path)
                .map_err(|e| format!("[tls] client_ca {}: cannot read: {e}", path.display()))?;
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            if CertificateDer::pem_slice_iter(&pem)
                .flatten()
                .next()
                .is_none()
            {
                return Err(format!(
                    "[tls] client_ca {}: no PEM certificate in it",
                    path.display()
                ));
            }
        }
        // every role, assigned or not (JWTs may name any of them)
        let all: Vec<String> = self.roles.iter().map(|r| r.name.clone()).collect();
        self.rules_for(&all)?;
        let mut roles = std::collections::HashSet::new();
        for role in &self.roles {
            if !roles.insert(role.name.as_str()) {
                return Err(format!("role {:?} is listed twice", role.name));
            }
        }
        for user in &self.users {
            self.rules_for(&user.roles)
                .map_err(|e| format!("user {:?}: {e}", user.name))?;
        }
        self.rules_for(&self.anonymous_roles)
            .map_err(|e| format!("anonymous_roles: {e}"))?;
        self.file_roots()?;
        if self.token_ttl_secs == 0 || self.max_sessions == 0 {
            return Err("token_ttl_secs and max_sessions must be positive".to_string());
        }
        Ok(())
    }

    /// What a principal with these roles may do (every privilege when no roles are defined).
    pub fn rules_for(&self, roles: &[String]) -> Result<Rules, String> {
        if self.roles.is_empty() {
            if let Some(role) = roles.first() {
                return Err(format!("role {role:?} is not defined in [[roles]]"));
            }
            return Ok(Rules::unrestricted());
        }
        Rules::of_roles(roles, &self.roles, &self.base_dir)
    }

    /// The file roots, resolved against the config file's directory (each must exist).
    pub fn file_roots(&self) -> Result<FileRoots, String> {
        let resolve = |dirs: &[PathBuf]| dirs.iter().map(|d| self.resolve(d)).collect::<Vec<_>>();
        FileRoots::new(&resolve(&self.files.read), &resolve(&self.files.write))
    }

    /// `path` resolved against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The `CREATE EXTERNAL TABLE` statements for `[[tables]]`.
    pub fn table_statements(&self) -> Vec<String> {
        self.tables
            .iter()
            .map(|t| {
                let location = if t.location.contains("://") {
                    t.location.clone()
                } else {
                    self.resolve(Path::new(&t.location)).display().to_string()
                };
                let mut sql = format!(
                    "CREATE EXTERNAL TABLE {} STORED AS {} LOCATION {}",
                    quote_ident(&t.name),
                    t.format.to_uppercase(),
                    quote_literal(&location)
                );
                if !t.options.is_empty() {
                    let options: Vec<String> = t
                        .options
                        .iter()
                        .map(|(k, v)| format!("{} {}", quote_literal(k), quote_literal(v)))
                        .collect();
                    sql.push_str(&format!(" OPTIONS ({})", options.join(", ")));
                }
                sql
            })
            .collect()
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file_and_builds_table_statements() {
        let config = ServerConfig::parse(
            r#"
            addr = "127.0.0.1:0"
            allow_anonymous = true
            [[tables]]
            name = "Calls"
            location = "/data/it's.vcf.gz"
            options = { samples = "A,B" }
            "#,
        )
        .unwrap();
        assert_eq!(config.addr.unwrap().port(), 0);
        assert_eq!(
            config.table_statements(),
            vec![
                "CREATE EXTERNAL TABLE \"Calls\" STORED AS VCF LOCATION '/data/it''s.vcf.gz' OPTIONS ('samples' 'A,B')"
            ]
        );
        assert!(config.check().is_ok());
    }

    #[test]
    fn rejects_unknown_keys_and_unusable_settings() {
        let err = ServerConfig::parse("adress = \"x\"").unwrap_err();
        assert!(err.contains("adress"), "{err}");
        let nobody = ServerConfig::parse("").unwrap();
        assert!(nobody.check().unwrap_err().contains("nobody"));
        let bad_hash =
            ServerConfig::parse("[[users]]\nname = \"a\"\npassword_hash = \"secret\"").unwrap();
        assert!(bad_hash.check().unwrap_err().contains("hash-password"));
    }
}
