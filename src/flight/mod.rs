//! `vcfq serve`: the engine as an Arrow Flight SQL server (gRPC), for ADBC, JDBC (DBeaver)
//! and any Flight SQL client.
//!
//! - [`config`]: the TOML config file (users, roles, file roots, TLS, tables registered at
//!   start, limits, audit).
//! - [`audit`]: the hash-chained audit trail of statements and logins.
//! - [`activity`], [`system`]: running and recent queries and live sessions, as
//!   `system.queries` / `system.sessions` (and `system.audit`), and `cancel_query(id)`.
//! - [`auth`]: basic username/password in the handshake → expiring bearer token; bearer JWTs
//!   ([`jwt`]); client certificates of mutual TLS ([`certs`]).
//! - [`metrics`]: Prometheus metrics on an HTTP port; [`rpc`]: the layer that counts and
//!   traces every call.
//! - [`sessions`]: one DataFusion session per login or anonymous connection.
//! - [`conn`]: connections that end their sessions when they close.
//! - [`service`]: the Flight SQL commands.
//! - [`status`]: errors → gRPC status codes.
//! - [`info`]: `GetSqlInfo` and `GetXdbcTypeInfo` answers.
//! - [`params`]: prepared-statement parameters.

pub mod activity;
pub mod audit;
pub mod auth;
pub mod certs;
pub mod config;
pub mod conn;
pub mod info;
pub mod jwt;
pub mod metrics;
pub mod params;
pub mod rpc;
pub mod service;
pub mod sessions;
pub mod status;
pub mod system;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use arrow_flight::flight_service_server::FlightServiceServer;
use datafusion::catalog::TableProvider;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use self::activity::Activity;
use self::audit::AuditLog;
use self::auth::Authenticator;
use self::config::{ClientAuth, ServerConfig};
use self::jwt::JwtVerifier;
use self::metrics::ServerMetrics;
use self::rpc::RpcLayer;
use self::service::VcfqFlightSql;
use self::sessions::{Access, SessionStore};
use crate::telemetry::{Tracing, requested_by_environment};

/// The address used when neither `--addr` nor the config file gives one.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// Starts the server and runs until SIGTERM or Ctrl-C; then running queries get the grace
/// period to finish and are cancelled after it. Prints `listening on …` on stdout once the
/// port is bound (port 0 in the address picks a free one).
pub async fn serve(config: ServerConfig) -> Result<()> {
    let addr: SocketAddr = match config.addr {
        Some(addr) => addr,
        None => DEFAULT_ADDR.parse().context("default address")?,
    };
    // traces first: sessions made from here on wrap their operators in spans
    let tracing = if config.tracing.is_some() || requested_by_environment() {
        Some(Tracing::start(&config.tracing.clone().unwrap_or_default())?)
    } else {
        None
    };
    let served = serve_traced(config, addr, tracing.is_some()).await;
    if let Some(tracing) = tracing {
        tracing.shutdown().await;
    }
    served
}

async fn serve_traced(config: ServerConfig, addr: SocketAddr, traced: bool) -> Result<()> {
    let mut runtime = RuntimeEnvBuilder::new();
    if config.memory_limit_mb > 0 {
        runtime = runtime.with_memory_limit(config.memory_limit_mb * 1024 * 1024, 1.0);
    }
    let runtime = runtime.build_arc().context("cannot set up the runtime")?;

    // tables of the config file: made once, shared by every session
    let template = crate::SessionBuilder::new()
        .with_runtime(Arc::clone(&runtime))
        .build()?;
    for sql in config.table_statements() {
        let created = async { crate::session::sql(&template, &sql).await?.collect().await }.await;
        created.with_context(|| format!("config table: {sql}"))?;
    }
    let mut tables: Vec<(String, Arc<dyn TableProvider>)> = Vec::new();
    if let Some(schema) = template
        .catalog("datafusion")
        .and_then(|c| c.schema("public"))
    {
        for name in schema.table_names() {
            if let Some(table) = schema.table(&name).await? {
                tables.push((name, table));
            }
        }
    }
    let access = Access::from_config(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let users: Vec<String> = config.users.iter().map(|u| u.name.clone()).collect();
    let audit_path = config.audit.as_ref().map(|a| config.resolve(&a.path));
    let store = Arc::new(
        SessionStore::new(
            runtime,
            access,
            Arc::new(Activity::default()),
            audit_path.clone(),
            tables,
            config.startup.clone(),
            config.max_sessions,
            Duration::from_secs(config.session_idle_secs),
        )
        .with_cluster(config.cluster.as_ref().map(|c| c.scheduler.clone())),
    );
    // every principal's session, once: the startup statements run, and each grant's columns,
    // masks and row filter plan against its table
    store
        .new_context(&sessions::Identity::of_user(None))
        .await
        .context("config startup statements (anonymous session)")?;
    for user in &users {
        store
            .new_context(&sessions::Identity::of_user(Some(user)))
            .await
            .with_context(|| format!("config: the session of user {user:?}"))?;
    }
    let mut auth = Authenticator::new(
        &config.users,
        config.allow_anonymous,
        Duration::from_secs(config.token_ttl_secs),
    );
    if let Some(jwt) = &config.jwt {
        auth = auth
            .with_jwt(JwtVerifier::from_config(jwt, &config.base_dir).map_err(anyhow::Error::msg)?);
    }
    let auth = Arc::new(auth);

    // without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to each small reply
    let incoming = TcpIncoming::bind(addr)
        .with_context(|| format!("cannot listen on {addr}"))?
        .with_nodelay(Some(true));
    let local = incoming
        .local_addr()
        .with_context(|| format!("cannot listen on {addr}"))?;
    let mut server = Server::builder();
    let scheme = if let Some(tls) = &config.tls {
        // two crypto providers are linked (ring for tonic, aws-lc-rs for the Iggy SDK), so
        // rustls cannot choose one itself: TLS here is ring (an error only means one is set)
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert_path = config.resolve(&tls.cert);
        let key_path = config.resolve(&tls.key);
        let cert = std::fs::read(&cert_path)
            .with_context(|| format!("{}: cannot read TLS certificate", cert_path.display()))?;
        let key = std::fs::read(&key_path)
            .with_context(|| format!("{}: cannot read TLS key", key_path.display()))?;
        let mut tls_config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &tls.client_ca {
            let ca_path = config.resolve(ca);
            let ca = std::fs::read(&ca_path)
                .with_context(|| format!("{}: cannot read the client CA", ca_path.display()))?;
            tls_config = tls_config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(tls.client_auth == ClientAuth::Optional);
        }
        server = server
            .tls_config(tls_config)
            .context("bad TLS certificate, key or client CA")?;
        "grpc+tls"
    } else {
        "grpc"
    };

    tokio::spawn(reap(Arc::clone(&auth), Arc::clone(&store)));
    let audit = match &audit_path {
        Some(path) => {
            let log = AuditLog::open(path)
                .with_context(|| format!("{}: cannot open the audit trail", path.display()))?;
            Some(Arc::new(log))
        }
        None => None,
    };
    let metrics = config
        .metrics
        .as_ref()
        .map(|_| Arc::new(ServerMetrics::new()));
    let client_user = config
        .tls
        .as_ref()
        .filter(|t| t.client_ca.is_some())
        .map(|t| t.client_user);
    let service = FlightServiceServer::new(VcfqFlightSql::new(
        auth,
        Arc::clone(&store),
        audit,
        metrics.clone(),
        client_user,
    ))
    .max_decoding_message_size(64 * 1024 * 1024);
    let roots = config.file_roots().map_err(|e| anyhow::anyhow!("{e}"))?;
    let shown = |dirs: &[std::path::PathBuf]| {
        if dirs.is_empty() {
            "nothing".to_string()
        } else {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    eprintln!(
        "vcfq serve: clients may read files under {}; write under {}",
        shown(roots.read_roots()),
        shown(roots.write_roots())
    );
    println!("vcfq serve: listening on {scheme}://{local}");
    if let (Some(m), Some(metrics)) = (&config.metrics, &metrics) {
        let listener = tokio::net::TcpListener::bind(m.addr)
            .await
            .with_context(|| format!("[metrics] cannot listen on {}", m.addr))?;
        let at = listener
            .local_addr()
            .with_context(|| format!("[metrics] cannot listen on {}", m.addr))?;
        println!("vcfq serve: metrics on http://{at}/metrics");
        let (token, metrics, store) = (m.token.clone(), Arc::clone(metrics), Arc::clone(&store));
        tokio::spawn(async move {
            if let Err(e) = metrics::serve(listener, token, metrics, store).await {
                eprintln!("vcfq serve: the metrics endpoint failed: {e}");
            }
        });
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let tracked_store = Arc::clone(&store);
    let incoming = futures::StreamExt::map(incoming, move |accepted| {
        accepted.map(|stream| conn::TrackedConnection::new(stream, Arc::clone(&tracked_store)))
    });
    let running = server
        .layer(RpcLayer::new(metrics, traced))
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        });
    tokio::pin!(running);
    tokio::select! {
        result = &mut running => return result.context("server failed"),
        () = shutdown_signal() => {}
    }
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    eprintln!(
        "vcfq serve: shutting down; running queries have {}s to finish",
        grace.as_secs()
    );
    let _ = stop.send(());
    match tokio::time::timeout(grace, &mut running).await {
        Ok(result) => result.context("server failed"),
        Err(_) => {
            eprintln!("vcfq serve: grace period over; cancelling running queries");
            store.cancel_all();
            // the cancelled queries' streams end with their Cancelled status; the process
            // waits for that to reach the clients (a busy machine may take a few seconds)
            // rather than exiting under them, which they would see as a broken pipe
            let _ = tokio::time::timeout(Duration::from_secs(10), &mut running).await;
            Ok(())
        }
    }
}

/// Drops expired tokens (and their sessions) and idle sessions, every 30 s.
async fn reap(auth: Arc<Authenticator>, store: Arc<SessionStore>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        for token in auth.expire() {
            store.remove(&format!("token:{token}"));
        }
        store.reap();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
