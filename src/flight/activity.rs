//! What the server is doing: its live sessions and its running and recent queries, kept for
//! `system.sessions` and `system.queries` and for `cancel_query(id)` (see [`super::system`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use datafusion::physical_plan::ExecutionPlan;
use futures::future::AbortHandle;

/// Finished queries kept for `system.queries`.
const RECENT: usize = 1000;

/// How a query stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryState {
    /// Planned or sending rows.
    Running,
    /// Ended with its last row.
    Done,
    /// Ended with an error (refusals included).
    Failed,
    /// Cancelled (by the client, an administrator, or shutdown) or abandoned.
    Cancelled,
}

impl QueryState {
    /// As `system.queries` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryState::Running => "running",
            QueryState::Done => "done",
            QueryState::Failed => "failed",
            QueryState::Cancelled => "cancelled",
        }
    }
}

/// One query, as `system.queries` shows it.
#[derive(Debug, Clone)]
pub struct QueryInfo {
    /// Server-wide id (what `cancel_query` takes).
    pub id: u64,
    /// The session's id.
    pub session: u64,
    /// The user (`None`: anonymous).
    pub user: Option<String>,
    /// The SQL text.
    pub sql: String,
    /// How it stands.
    pub state: QueryState,
    /// When it came.
    pub started: SystemTime,
    /// How long it ran (so far, while running).
    pub duration: Duration,
    /// Rows sent (or written, for commands).
    pub rows: u64,
    /// Bytes of Arrow data sent.
    pub bytes: u64,
    /// Its error, when it failed.
    pub error: Option<String>,
}

/// One live session, as `system.sessions` shows it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The session's id.
    pub id: u64,
    /// The user (`None`: anonymous).
    pub user: Option<String>,
    /// When it was made.
    pub started: SystemTime,
}

/// Counters a running query's result stream adds to, and the physical plans it ran.
#[derive(Debug, Default)]
pub struct Progress {
    /// Rows sent so far.
    pub rows: AtomicU64,
    /// Bytes sent so far.
    pub bytes: AtomicU64,
    plans: Mutex<Vec<Arc<dyn ExecutionPlan>>>,
}

impl Progress {
    /// A physical plan of the query started (a prepared statement bound to several rows runs
    /// several).
    pub fn ran(&self, plan: Arc<dyn ExecutionPlan>) {
        self.plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(plan);
    }

    /// Rows and bytes the query's scans have read, from its plans' metrics.
    pub fn scanned(&self) -> (u64, u64) {
        let plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        plans.iter().fold((0, 0), |(rows, bytes), plan| {
            let (r, b) = scanned(plan.as_ref());
            (rows + r, bytes + b)
        })
    }
}

/// Rows and bytes read by the scans (leaves) of a plan: records or messages read where the
/// scan counts them (VCF/BCF, topics), else the rows it produced; `bytes_scanned` where the
/// scan reports it.
pub fn scanned(plan: &dyn ExecutionPlan) -> (u64, u64) {
    let children = plan.children();
    let metrics = plan.metrics();
    let named = |name: &str| {
        metrics
            .as_ref()
            .and_then(|m| m.sum_by_name(name))
            .map(|v| v.as_usize() as u64)
    };
    let mut bytes = named("bytes_scanned").unwrap_or(0);
    let mut rows = 0;
    if children.is_empty() {
        rows = named("records_scanned")
            .or_else(|| named("messages_read"))
            .or_else(|| {
                metrics
                    .as_ref()
                    .and_then(|m| m.output_rows())
                    .map(|n| n as u64)
            })
            .unwrap_or(0);
    }
    for child in children {
        let (r, b) = scanned(child.as_ref());
        rows += r;
        bytes += b;
    }
    (rows, bytes)
}

#[derive(Debug)]
struct Running {
    info: QueryInfo,
    since: Instant,
    progress: Arc<Progress>,
    abort: Option<AbortHandle>,
}

#[derive(Debug, Default)]
struct Inner {
    running: HashMap<u64, Running>,
    recent: VecDeque<QueryInfo>,
    sessions: HashMap<u64, SessionInfo>,
}

/// The server's sessions and queries.
#[derive(Debug, Default)]
pub struct Activity {
    next: AtomicU64,
    inner: Mutex<Inner>,
}

impl Activity {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session was made.
    pub fn session_opened(&self, id: u64, user: Option<String>) {
        self.lock().sessions.insert(
            id,
            SessionInfo {
                id,
                user,
                started: SystemTime::now(),
            },
        );
    }

    /// A session ended.
    pub fn session_closed(&self, id: u64) {
        self.lock().sessions.remove(&id);
    }

    /// A query starts; its id and the counters its result stream adds to.
    pub fn start(&self, session: u64, user: Option<String>, sql: &str) -> (u64, Arc<Progress>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let progress = Arc::new(Progress::default());
        let info = QueryInfo {
            id,
            session,
            user,
            sql: sql.to_string(),
            state: QueryState::Running,
            started: SystemTime::now(),
            duration: Duration::ZERO,
            rows: 0,
            bytes: 0,
            error: None,
        };
        self.lock().running.insert(
            id,
            Running {
                info,
                since: Instant::now(),
                progress: Arc::clone(&progress),
                abort: None,
            },
        );
        (id, progress)
    }

    /// The handle that cancels query `id` (once its result is streaming).
    pub fn set_abort(&self, id: u64, abort: AbortHandle) {
        if let Some(r) = self.lock().running.get_mut(&id) {
            r.abort = Some(abort);
        }
    }

    /// Query `id` ended: `rows` (when known better than its stream's count), and how.
    pub fn finish(&self, id: u64, rows: Option<u64>, state: QueryState, error: Option<String>) {
        let mut inner = self.lock();
        let Some(r) = inner.running.remove(&id) else {
            return;
        };
        let mut info = r.info;
        info.duration = r.since.elapsed();
        info.rows = rows.unwrap_or_else(|| r.progress.rows.load(Ordering::Relaxed));
        info.bytes = r.progress.bytes.load(Ordering::Relaxed);
        info.state = state;
        info.error = error;
        if inner.recent.len() >= RECENT {
            inner.recent.pop_front();
        }
        inner.recent.push_back(info);
    }

    /// Cancels a running query; whether there was one to cancel (a query still being planned
    /// cannot be, and says so by `false`).
    pub fn cancel(&self, id: u64) -> bool {
        match self.lock().running.get(&id).and_then(|r| r.abort.clone()) {
            Some(abort) => {
                abort.abort();
                true
            }
            None => false,
        }
    }

    /// How many queries are running.
    pub fn running(&self) -> usize {
        self.lock().running.len()
    }

    /// The user of a running query.
    pub fn owner(&self, id: u64) -> Option<Option<String>> {
        self.lock().running.get(&id).map(|r| r.info.user.clone())
    }

    /// Running queries (with their progress), then recent ones, newest first.
    pub fn queries(&self) -> Vec<QueryInfo> {
        let inner = self.lock();
        let mut out: Vec<QueryInfo> = inner
            .running
            .values()
            .map(|r| {
                let mut info = r.info.clone();
                info.duration = r.since.elapsed();
                info.rows = r.progress.rows.load(Ordering::Relaxed);
                info.bytes = r.progress.bytes.load(Ordering::Relaxed);
                info
            })
            .collect();
        out.sort_by_key(|q| std::cmp::Reverse(q.id));
        out.extend(inner.recent.iter().rev().cloned());
        out
    }

    /// Live sessions, by id.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut out: Vec<SessionInfo> = self.lock().sessions.values().cloned().collect();
        out.sort_by_key(|s| s.id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_run_finish_and_are_kept_newest_first() {
        let a = Activity::default();
        let (q1, p1) = a.start(1, Some("alice".into()), "SELECT 1");
        let (q2, _) = a.start(1, Some("alice".into()), "SELECT 2");
        p1.rows.store(5, Ordering::Relaxed);
        assert_eq!(
            a.queries().iter().map(|q| q.id).collect::<Vec<_>>(),
            [q2, q1]
        );
        assert_eq!(a.queries()[1].rows, 5);
        assert!(!a.cancel(q1), "no handle yet: nothing to cancel");
        let (abort, registration) = AbortHandle::new_pair();
        a.set_abort(q1, abort);
        assert!(a.cancel(q1));
        assert!(registration.handle().is_aborted());
        a.finish(q1, None, QueryState::Cancelled, None);
        a.finish(q2, Some(1), QueryState::Failed, Some("boom".into()));
        let all = a.queries();
        assert_eq!(all[0].id, q2);
        assert_eq!(all[0].state, QueryState::Failed);
        assert_eq!(all[1].rows, 5);
        assert!(!a.cancel(q1), "a finished query is not cancelled");
        for i in 0..RECENT + 5 {
            let (q, _) = a.start(2, None, &format!("SELECT {i}"));
            a.finish(q, Some(0), QueryState::Done, None);
        }
        assert_eq!(a.queries().len(), RECENT);
    }
}
