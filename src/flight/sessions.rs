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
use crate::access::rules::{RoleConfig, Rules, TableView};

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
    /// What the statement does, once planned (the metrics' `kind`): see
    /// [`Audited::describe`].
    pub plan_kind: &'static str,
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

impl Audited {
    /// The tables and paths a plan touches, and what kind of statement it is: `query`,
    /// `insert`, `copy`, `ddl`, `explain`, `set` or `other`.
    pub fn describe(plan: &LogicalPlan) -> (Vec<String>, &'static str) {
        use datafusion::logical_expr::{DmlStatement, WriteOp};
        let kind = match plan {
            LogicalPlan::Dml(DmlStatement {
                op: WriteOp::Insert(_),
                ..
            }) => "insert",
            LogicalPlan::Dml(_) => "dml",
            LogicalPlan::Copy(_) => "copy",
            LogicalPlan::Ddl(_) => "ddl",
            LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) => "explain",
            LogicalPlan::Statement(_) => "set",
            LogicalPlan::DescribeTable(_) => "other",
            _ => "query",
        };
        (crate::access::guard::touched(plan), kind)
    }

    /// Notes what a statement's plan touches and what kind it is.
    pub fn planned(&mut self, plan: &LogicalPlan) {
        (self.objects, self.plan_kind) = Self::describe(plan);
    }
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
    /// Its owner's roles (for the audit trail).
    pub roles: Vec<String>,
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
    fn new(id: u64, ctx: SessionContext, user: Option<String>, roles: Vec<String>) -> Self {
        ClientSession {
            id,
            ctx,
            user,
            roles,
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

/// Who a session belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The user (`None`: anonymous).
    pub user: Option<String>,
    /// Roles that came with the credentials (a JWT's); `None`: the config's roles of `user`.
    pub roles: Option<Vec<String>>,
}

impl Identity {
    /// A configured user (`None`: anonymous), with the config's roles.
    pub fn of_user(user: Option<&str>) -> Self {
        Identity {
            user: user.map(str::to_string),
            roles: None,
        }
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
    /// The roles defined, for principals whose roles come with their credentials.
    pub roles: Vec<RoleConfig>,
    /// Where the config file is (role locations are relative to it).
    pub base_dir: PathBuf,
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
            roles: config.roles.clone(),
            base_dir: config.base_dir.clone(),
        })
    }

    /// The grants of a principal. Roles that came with credentials count only where they are
    /// defined in `[[roles]]` (an identity provider's other groups grant nothing); without
    /// any roles defined, everyone may do everything within the roots.
    pub fn rules(&self, who: &Identity) -> Rules {
        match (&who.roles, &who.user) {
            (Some(_), _) if self.roles.is_empty() => Rules::unrestricted(),
            (Some(roles), _) => {
                let defined: Vec<String> = roles
                    .iter()
                    .filter(|r| self.roles.iter().any(|d| &d.name == *r))
                    .cloned()
                    .collect();
                // the definitions were checked when the config was read
                Rules::of_roles(&defined, &self.roles, &self.base_dir).unwrap_or_default()
            }
            (None, Some(name)) => self.users.get(name).cloned().unwrap_or_default(),
            (None, None) => self.anonymous.clone(),
        }
    }
}

/// Makes sessions and finds them again by key.
pub struct SessionStore {
    runtime: Arc<RuntimeEnv>,
    /// The scheduler queries go to, with a cluster.
    cluster: Option<String>,
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
    #[allow(clippy::too_many_arguments)] // the server's parts, each used once, named at the call
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
            cluster: None,
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

    /// Sessions whose queries run on the cluster whose scheduler is at `url` (`df://…`).
    pub fn with_cluster(mut self, url: Option<String>) -> Self {
        self.cluster = url;
        self
    }

    /// A fresh DataFusion session for `who`: the shared tables and what the startup
    /// statements make, each as its grants show it (hidden, narrowed or whole), and its
    /// [`Guard`] on every later statement.
    pub async fn new_context(&self, who: &Identity) -> Result<SessionContext> {
        let mut builder = crate::SessionBuilder::new().with_runtime(Arc::clone(&self.runtime));
        if let Some(url) = &self.cluster {
            builder = crate::cluster::attach(builder, url)?;
        }
        let ctx = builder.build()?;
        for (name, table) in &self.tables {
            ctx.register_table(name.as_str(), Arc::clone(table))?;
        }
        for sql in &self.startup {
            crate::session::sql(&ctx, sql).await?.collect().await?;
        }
        let rules = self.access.rules(who);
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
            user: who.user.clone(),
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

    /// The roles of a principal, for the audit trail.
    pub fn roles_of(&self, who: &Identity) -> Vec<String> {
        self.access.rules(who).roles().to_vec()
    }

    /// The shared runtime (its memory pool).
    pub fn runtime(&self) -> &Arc<RuntimeEnv> {
        &self.runtime
    }

    /// The session under `key`, made when missing; whether it was made now.
    pub async fn get_or_create(
        &self,
        key: &str,
        who: &Identity,
    ) -> std::result::Result<(Arc<ClientSession>, bool), SessionError> {
        if let Some(session) = lock(&self.sessions).get(key) {
            session.touch();
            return Ok((Arc::clone(session), false));
        }
        if lock(&self.sessions).len() >= self.max_sessions {
            return Err(SessionError::TooMany(TooManySessions(self.max_sessions)));
        }
        let ctx = self.new_context(who).await.map_err(SessionError::Setup)?;
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let roles = self.roles_of(who);
        let session = Arc::new(ClientSession::new(id, ctx, who.user.clone(), roles));
        let mut sessions = lock(&self.sessions);
        // another request of the same client may have made it meanwhile
        let session = sessions.entry(key.to_string()).or_insert(session).clone();
        let made = session.id == id;
        if made {
            self.activity.session_opened(id, session.user.clone());
        }
        Ok((session, made))
    }

    /// Drops the session under `key` (token expired).
    pub fn remove(&self, key: &str) {
        if let Some(session) = lock(&self.sessions).remove(key) {
            session.cancel_all();
            self.activity.session_closed(session.id);
        }
    }

    /// Drops the sessions tied to a closed connection (anonymous clients, clients that send
    /// basic credentials on every call, clients known by their certificate); token and JWT
    /// sessions outlive connections.
    pub fn remove_connection(&self, peer: &str) {
        let anonymous = format!("peer:{peer}");
        let at_peer = format!("@{peer}");
        let mut sessions = lock(&self.sessions);
        sessions.retain(|key, session| {
            let tied = *key == anonymous
                || ((key.starts_with("basic:") || key.starts_with("cert:"))
                    && key.ends_with(&at_peer));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::rules::Privilege;

    fn config(text: &str) -> ServerConfig {
        ServerConfig::parse(text).unwrap()
    }

    #[test]
    fn roles_that_come_with_credentials_count_where_defined() {
        let c = config(
            r#"
            [[users]]
            name = "alice"
            roles = ["analyst"]
            [[roles]]
            name = "analyst"
            [[roles.grants]]
            tables = ["calls"]
            privileges = ["select"]
            [[roles]]
            name = "loader"
            [[roles.grants]]
            tables = ["staging"]
            privileges = ["insert"]
            "#,
        );
        let access = Access::from_config(&c).unwrap();
        let jwt = |roles: &[&str]| Identity {
            user: Some("carol".into()),
            roles: Some(roles.iter().map(|r| r.to_string()).collect()),
        };
        let carol = access.rules(&jwt(&["loader", "some-idp-group"]));
        assert_eq!(carol.roles(), ["loader"]);
        assert!(carol.table_allows("staging", Privilege::Insert));
        assert!(!carol.table_allows("calls", Privilege::Select));
        assert!(
            !access
                .rules(&jwt(&[]))
                .table_allows("calls", Privilege::Select)
        );
        // a configured user's roles come from the config, whatever its name
        let alice = access.rules(&Identity::of_user(Some("alice")));
        assert!(alice.table_allows("calls", Privilege::Select));
        assert!(
            !access
                .rules(&Identity::of_user(Some("nobody")))
                .table_allows("calls", Privilege::Select)
        );
    }

    #[test]
    fn without_roles_defined_everyone_may_everything() {
        let access = Access::from_config(&config("allow_anonymous = true")).unwrap();
        let who = Identity {
            user: Some("carol".into()),
            roles: Some(vec!["whatever".into()]),
        };
        assert!(
            access
                .rules(&who)
                .table_allows("anything", Privilege::Insert)
        );
    }
}
