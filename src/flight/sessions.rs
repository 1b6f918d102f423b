//! Per-client sessions. A login (one bearer token) or, for anonymous clients, one gRPC
//! connection (its peer address) owns a DataFusion session: its settings, temporary tables,
//! prepared statements and pending queries are its own and invisible to other clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::future::AbortHandle;

/// Pending queries kept per session before the oldest are dropped (a client that asks for
/// FlightInfo and never fetches it must not grow the server without bound).
const MAX_PENDING: usize = 256;

/// A prepared statement: its plan (with placeholders) and the last parameter rows bound.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The plan, placeholders unbound.
    pub plan: LogicalPlan,
    /// Result schema.
    pub dataset_schema: SchemaRef,
    /// Rows of parameter values bound by the client (empty: none bound).
    pub params: Vec<Vec<ScalarValue>>,
}

/// A query planned by `GetFlightInfo`, waiting for `DoGet` on its ticket.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The plans to run in order (several for a prepared statement bound to several rows).
    pub plans: Vec<LogicalPlan>,
    /// Result schema.
    pub schema: SchemaRef,
    /// The result, when it was computed at once (commands: DDL, `INSERT`, `SET`).
    pub ready: Option<Vec<datafusion::arrow::record_batch::RecordBatch>>,
}

/// One client's session.
pub struct ClientSession {
    /// The DataFusion session.
    pub ctx: SessionContext,
    /// Who owns it (`None`: anonymous).
    pub user: Option<String>,
    next_id: AtomicU64,
    prepared: Mutex<HashMap<u64, Prepared>>,
    pending: Mutex<Vec<(u64, Pending)>>,
    running: Mutex<HashMap<u64, AbortHandle>>,
    last_used: Mutex<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientSession {
    fn new(ctx: SessionContext, user: Option<String>) -> Self {
        ClientSession {
            ctx,
            user,
            next_id: AtomicU64::new(1),
            prepared: Mutex::new(HashMap::new()),
            pending: Mutex::new(Vec::new()),
            running: Mutex::new(HashMap::new()),
            last_used: Mutex::new(Instant::now()),
        }
    }

    /// A new id for a prepared statement or query of this session.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Keeps a prepared statement; returns its handle.
    pub fn add_prepared(&self, prepared: Prepared) -> u64 {
        let id = self.next_id();
        lock(&self.prepared).insert(id, prepared);
        id
    }

    /// Runs `f` on a prepared statement; `None` when the handle is unknown.
    pub fn with_prepared<R>(&self, id: u64, f: impl FnOnce(&mut Prepared) -> R) -> Option<R> {
        lock(&self.prepared).get_mut(&id).map(f)
    }

    /// Forgets a prepared statement; whether it existed.
    pub fn close_prepared(&self, id: u64) -> bool {
        lock(&self.prepared).remove(&id).is_some()
    }

    /// Keeps a planned query until its ticket is fetched; returns the ticket's id.
    pub fn add_pending(&self, pending: Pending) -> u64 {
        let id = self.next_id();
        let mut queue = lock(&self.pending);
        if queue.len() >= MAX_PENDING {
            queue.remove(0);
        }
        queue.push((id, pending));
        id
    }

    /// Takes a planned query (a ticket is good for one `DoGet`).
    pub fn take_pending(&self, id: u64) -> Option<Pending> {
        let mut queue = lock(&self.pending);
        let at = queue.iter().position(|(i, _)| *i == id)?;
        Some(queue.remove(at).1)
    }

    /// Records a query as running, with the handle that cancels it.
    pub fn start(&self, id: u64, abort: AbortHandle) {
        lock(&self.running).insert(id, abort);
    }

    /// Records a query as done.
    pub fn finish(&self, id: u64) {
        lock(&self.running).remove(&id);
    }

    /// Cancels a query by ticket id, running or still pending; whether there was one.
    pub fn cancel(&self, id: u64) -> bool {
        if let Some(abort) = lock(&self.running).remove(&id) {
            abort.abort();
            return true;
        }
        self.take_pending(id).is_some()
    }

    /// Cancels every running query (server shutdown after the grace period).
    pub fn cancel_all(&self) {
        for (_, abort) in lock(&self.running).drain() {
            abort.abort();
        }
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    fn is_busy(&self) -> bool {
        !lock(&self.running).is_empty()
    }
}

/// Makes sessions and finds them again by key.
pub struct SessionStore {
    runtime: Arc<RuntimeEnv>,
    tables: Vec<(String, Arc<dyn TableProvider>)>,
    startup: Vec<String>,
    max_sessions: usize,
    idle: Duration,
    sessions: Mutex<HashMap<String, Arc<ClientSession>>>,
}

/// There is no room for another session.
#[derive(Debug, thiserror::Error)]
#[error("too many sessions (limit {0}); close idle connections or raise max_sessions")]
pub struct TooManySessions(pub usize);

impl SessionStore {
    /// Sessions sharing one runtime (memory pool) and seeing `tables` from the start.
    pub fn new(
        runtime: Arc<RuntimeEnv>,
        tables: Vec<(String, Arc<dyn TableProvider>)>,
        startup: Vec<String>,
        max_sessions: usize,
        idle: Duration,
    ) -> Self {
        SessionStore {
            runtime,
            tables,
            startup,
            max_sessions,
            idle,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh DataFusion session with the shared tables and startup statements.
    pub async fn new_context(&self) -> Result<SessionContext> {
        let ctx = crate::SessionBuilder::new()
            .with_runtime(Arc::clone(&self.runtime))
            .build()?;
        for (name, table) in &self.tables {
            ctx.register_table(name.as_str(), Arc::clone(table))?;
        }
        for sql in &self.startup {
            crate::session::sql(&ctx, sql).await?.collect().await?;
        }
        Ok(ctx)
    }

    /// The session under `key`, made when missing.
    pub async fn get_or_create(
        &self,
        key: &str,
        user: Option<&str>,
    ) -> std::result::Result<Arc<ClientSession>, SessionError> {
        if let Some(session) = lock(&self.sessions).get(key) {
            session.touch();
            return Ok(Arc::clone(session));
        }
        if lock(&self.sessions).len() >= self.max_sessions {
            return Err(SessionError::TooMany(TooManySessions(self.max_sessions)));
        }
        let ctx = self.new_context().await.map_err(SessionError::Setup)?;
        let session = Arc::new(ClientSession::new(ctx, user.map(str::to_string)));
        let mut sessions = lock(&self.sessions);
        // another request of the same client may have made it meanwhile
        let session = sessions.entry(key.to_string()).or_insert(session).clone();
        Ok(session)
    }

    /// Drops the session under `key` (token expired).
    pub fn remove(&self, key: &str) {
        if let Some(session) = lock(&self.sessions).remove(key) {
            session.cancel_all();
        }
    }

    /// Drops the sessions tied to a closed connection (anonymous clients, and clients that
    /// send basic credentials on every call); token sessions outlive connections.
    pub fn remove_connection(&self, peer: &str) {
        let anonymous = format!("peer:{peer}");
        let basic = format!("@{peer}");
        let mut sessions = lock(&self.sessions);
        sessions.retain(|key, session| {
            let tied = *key == anonymous || (key.starts_with("basic:") && key.ends_with(&basic));
            if tied {
                session.cancel_all();
            }
            !tied
        });
    }

    /// Drops sessions idle for longer than the limit (never one with a query running).
    pub fn reap(&self) -> usize {
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        sessions.retain(|_, s| s.is_busy() || s.idle_for() < self.idle);
        before - sessions.len()
    }

    /// Cancels every running query of every session.
    pub fn cancel_all(&self) {
        for session in lock(&self.sessions).values() {
            session.cancel_all();
        }
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Whether there is no live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A session could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session limit is reached.
    #[error(transparent)]
    TooMany(TooManySessions),
    /// Registering the shared tables or running the startup statements failed.
    #[error("cannot set up a session: {0}")]
    Setup(datafusion::error::DataFusionError),
}
