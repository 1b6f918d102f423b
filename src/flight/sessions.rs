//! Per-client sessions. A login (one bearer token) or, for anonymous clients, one gRPC
//! connection (its peer address) owns a DataFusion session: its settings, temporary tables,
//! prepared statements and pending queries are its own and invisible to other clients.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
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

use super::activity::{Activity, Progress, QueryState};
use super::config::ServerConfig;
use super::system::Viewer;
use crate::access::Guard;
use crate::access::paths::FileRoots;
use crate::access::restrict::restricted_table;
use crate::access::rules::{Rules, TableView};

/// Pending queries kept per session before the oldest are dropped (a client that asks for
/// FlightInfo and never fetches it must not grow the server without bound).
const MAX_PENDING: usize = 256;

/// A prepared statement: its plan (with placeholders) and the last parameter rows bound.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The statement's text (for the audit trail).
    pub sql: String,
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
    /// What the audit trail records when the result has been sent.
    pub audit: Option<Audited>,
}

/// A statement as the audit trail and `system.queries` record it, carried from planning to
/// its last row.
#[derive(Debug, Clone)]
pub struct Audited {
    /// Its server-wide query id (`system.queries`, `cancel_query`).
    pub query: u64,
    /// Rows and bytes its result stream has sent.
    pub progress: Arc<Progress>,
    /// Ends the query in [`Activity`] as cancelled if it is dropped unfinished (a result
    /// never fetched).
    pub ticket: Arc<QueryTicket>,
    /// `statement` or `prepare`.
    pub kind: &'static str,
    /// The statement's id within its session.
    pub statement: u64,
    /// Its text.
    pub sql: String,
    /// Bound parameter rows, as text.
    pub params: Vec<Vec<String>>,
    /// Tables and paths it touches.
    pub objects: Vec<String>,
    /// The client's address.
    pub peer: String,
    /// When the request came.
    pub started: Instant,
}

/// Marks a query cancelled in [`Activity`] when the last copy of its [`Audited`] goes
/// without its end being recorded (finishing twice is a no-op).
#[derive(Debug)]
pub struct QueryTicket {
    /// The server's activity.
    pub activity: Arc<Activity>,
    /// The query.
    pub id: u64,
}

impl Drop for QueryTicket {
    fn drop(&mut self) {
        self.activity.finish(
            self.id,
            None,
            QueryState::Cancelled,
            Some("the result was never fetched".into()),
        );
    }
}

/// One client's session.
pub struct ClientSession {
    /// The session's number (as the audit trail names it; never its token).
    pub id: u64,
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
    fn new(id: u64, ctx: SessionContext, user: Option<String>) -> Self {
        ClientSession {
            id,
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

/// What the server lets its clients reach: file roots, stream locations, and each principal's
/// grants.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Directories clients may read and write under.
    pub roots: FileRoots,
    /// Stream location prefixes clients may create tables on.
    pub streams: Vec<String>,
    /// The grants of each user.
    pub users: HashMap<String, Rules>,
    /// The grants of anonymous clients.
    pub anonymous: Rules,
}

impl Access {
    /// Everything a config file says about access.
    pub fn from_config(config: &ServerConfig) -> std::result::Result<Self, String> {
        let mut users = HashMap::new();
        for user in &config.users {
            users.insert(user.name.clone(), config.rules_for(&user.roles)?);
        }
        Ok(Access {
            roots: config.file_roots()?,
            streams: config.streams.allow.clone(),
            users,
            anonymous: config.rules_for(&config.anonymous_roles)?,
        })
    }

    /// The grants of `user` (`None`: anonymous).
    pub fn rules(&self, user: Option<&str>) -> Rules {
        match user {
            Some(name) => self.users.get(name).cloned().unwrap_or_default(),
            None => self.anonymous.clone(),
        }
    }
}

/// Makes sessions and finds them again by key.
pub struct SessionStore {
    runtime: Arc<RuntimeEnv>,
    access: Access,
    activity: Arc<Activity>,
    audit: Option<PathBuf>,
    tables: Vec<(String, Arc<dyn TableProvider>)>,
    startup: Vec<String>,
    max_sessions: usize,
    idle: Duration,
    sessions: Mutex<HashMap<String, Arc<ClientSession>>>,
    next_session: AtomicU64,
}

/// There is no room for another session.
#[derive(Debug, thiserror::Error)]
#[error("too many sessions (limit {0}); close idle connections or raise max_sessions")]
pub struct TooManySessions(pub usize);

impl SessionStore {
    /// Sessions sharing one runtime (memory pool) and seeing `tables` from the start, as far
    /// as `access` lets each principal.
    pub fn new(
        runtime: Arc<RuntimeEnv>,
        access: Access,
        activity: Arc<Activity>,
        audit: Option<PathBuf>,
        tables: Vec<(String, Arc<dyn TableProvider>)>,
        startup: Vec<String>,
        max_sessions: usize,
        idle: Duration,
    ) -> Self {
        SessionStore {
            runtime,
            access,
            activity,
            audit,
            tables,
            startup,
            max_sessions,
            idle,
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
        }
    }

    /// A fresh DataFusion session for `user` (`None`: anonymous): the shared tables and
    /// what the startup statements make, each as the user's grants show it (hidden, narrowed
    /// or whole), and the user's [`Guard`] on every later statement.
    pub async fn new_context(&self, user: Option<&str>) -> Result<SessionContext> {
        let ctx = crate::SessionBuilder::new()
            .with_runtime(Arc::clone(&self.runtime))
            .build()?;
        for (name, table) in &self.tables {
            ctx.register_table(name.as_str(), Arc::clone(table))?;
        }
        for sql in &self.startup {
            crate::session::sql(&ctx, sql).await?.collect().await?;
        }
        let rules = self.access.rules(user);
        let state = ctx.state();
        let default_schema = &state.config().options().catalog.default_schema;
        let mut shared = HashSet::new();
        if let Some(schema) = ctx
            .catalog(&state.config().options().catalog.default_catalog)
            .and_then(|c| c.schema(default_schema))
        {
            for name in schema.table_names() {
                let Some(table) = schema.table(&name).await? else {
                    continue;
                };
                match rules.table_view(&name) {
                    TableView::Hidden => {
                        schema.deregister_table(&name)?;
                    }
                    TableView::Visible { restriction, .. } if !restriction.is_none() => {
                        let narrowed = restricted_table(&state, &name, table, &restriction)?;
                        schema.deregister_table(&name)?;
                        schema.register_table(name.clone(), narrowed)?;
                    }
                    TableView::Visible { .. } => {}
                }
                shared.insert(name);
            }
        }
        let viewer = Viewer {
            user: user.map(str::to_string),
            admin: rules.is_admin(),
        };
        super::system::register(&ctx, &self.activity, self.audit.clone(), viewer)?;
        Guard::new(
            self.access.roots.clone(),
            self.access.streams.clone(),
            rules,
            shared,
        )
        .install(&ctx);
        Ok(ctx)
    }

    /// The server's sessions and queries.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// The roles of `user` (`None`: anonymous), for the audit trail.
    pub fn roles_of(&self, user: Option<&str>) -> Vec<String> {
        self.access.rules(user).roles().to_vec()
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
        let ctx = self.new_context(user).await.map_err(SessionError::Setup)?;
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(ClientSession::new(id, ctx, user.map(str::to_string)));
        let mut sessions = lock(&self.sessions);
        // another request of the same client may have made it meanwhile
        let session = sessions.entry(key.to_string()).or_insert(session).clone();
        if session.id == id {
            self.activity.session_opened(id, session.user.clone());
        }
        Ok(session)
    }

    /// Drops the session under `key` (token expired).
    pub fn remove(&self, key: &str) {
        if let Some(session) = lock(&self.sessions).remove(key) {
            session.cancel_all();
            self.activity.session_closed(session.id);
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
                self.activity.session_closed(session.id);
            }
            !tied
        });
    }

    /// Drops sessions idle for longer than the limit (never one with a query running).
    pub fn reap(&self) -> usize {
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        sessions.retain(|_, s| {
            let keep = s.is_busy() || s.idle_for() < self.idle;
            if !keep {
                self.activity.session_closed(s.id);
            }
            keep
        });
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
