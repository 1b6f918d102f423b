//! The Flight SQL service: statements, prepared statements, updates, catalog metadata,
//! cancellation. Results stream batch by batch from the DataFusion plan to the client.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{GetCatalogsBuilder, SqlInfoData, XdbcTypeInfoData};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket, decode::FlightRecordBatchStream,
};
use bytes::Bytes;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;

use futures::future::{AbortHandle, Abortable};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::activity::{Progress, QueryState};
use super::audit::{AuditLog, Event, Outcome};
use super::auth::{AuthError, Authenticator, Principal, parse_basic};
use super::certs::CertName;
use super::info::{SQL_INFO, XDBC_TYPE_INFO};
use super::jwt::looks_like_jwt;
use super::metrics::{ServerMetrics, StatementFigures, StatementOutcome};
use super::params::{bind, number_placeholders, parameter_schema, rows_of};
use super::sessions::{
    Audited, ClientSession, Identity, Pending, Prepared, QueryTicket, SessionError, SessionStore,
};
use super::status::{code_name, status_from_auth, status_from_datafusion, status_from_flight};

type FlightDataStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

/// The name of the Flight (not Flight SQL) action that cancels a query.
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// vcfq's Flight SQL service.
pub struct VcfqFlightSql {
    auth: Arc<Authenticator>,
    sessions: Arc<SessionStore>,
    recorder: Recorder,
    /// With mutual TLS: which name of a client certificate is the user.
    client_user: Option<CertName>,
}

impl VcfqFlightSql {
    /// A service authenticating with `auth` (and, with mutual TLS, by the `client_user` name
    /// of client certificates), keeping client sessions in `sessions`, and recording
    /// statements and logins in `audit` and `metrics`.
    pub fn new(
        auth: Arc<Authenticator>,
        sessions: Arc<SessionStore>,
        audit: Option<Arc<AuditLog>>,
        metrics: Option<Arc<ServerMetrics>>,
        client_user: Option<CertName>,
    ) -> Self {
        VcfqFlightSql {
            auth,
            recorder: Recorder {
                audit,
                metrics,
                sessions: Arc::clone(&sessions),
            },
            sessions,
            client_user,
        }
    }

    /// Records a statement's end: in `system.queries`, the metrics and the audit trail.
    fn record(
        &self,
        session: &ClientSession,
        audited: &Audited,
        rows: Option<u64>,
        result: Result<(), &Status>,
    ) {
        self.recorder.statement(session, audited, rows, result);
    }

    /// Records a login attempt (`method`: password, jwt, certificate, anonymous).
    fn record_login(
        &self,
        who: &Identity,
        peer: String,
        method: &str,
        result: Result<(), &Status>,
    ) {
        if let Some(metrics) = &self.recorder.metrics {
            metrics.login(method, result.is_ok());
        }
        let Some(log) = &self.recorder.audit else {
            return;
        };
        let event = Event {
            kind: "login",
            user: who.user.clone(),
            roles: self.sessions.roles_of(who),
            peer,
            outcome: Some(outcome_of(result)),
            ..Default::default()
        };
        if let Err(e) = log.append(&event) {
            eprintln!("vcfq serve: cannot append to {}: {e}", log.path().display());
        }
    }

    /// The user a verified client certificate names, with mutual TLS (`None` without it, or
    /// when the connection has no certificate).
    fn certificate_user<T>(&self, request: &Request<T>) -> Result<Option<String>, Status> {
        let Some(which) = self.client_user else {
            return Ok(None);
        };
        let Some(chain) = request.peer_certs() else {
            return Ok(None);
        };
        let Some(leaf) = chain.first() else {
            return Ok(None);
        };
        super::certs::user_of(leaf.as_ref(), which)
            .map(Some)
            .map_err(|e| status_from_auth(&AuthError::Rejected(e)))
    }

    /// What the audit trail will say of a statement of `session`.
    fn audited<T>(
        &self,
        request: &Request<T>,
        session: &ClientSession,
        kind: &'static str,
        sql: &str,
    ) -> Audited {
        self.audited_from(peer_of(request), session, kind, sql)
    }

    /// [`Self::audited`] for a request from `peer`.
    fn audited_from(
        &self,
        peer: String,
        session: &ClientSession,
        kind: &'static str,
        sql: &str,
    ) -> Audited {
        let activity = self.sessions.activity();
        let (query, progress) = activity.start(session.id, session.user.clone(), sql);
        tracing::Span::current().record("db.query.text", sql);
        Audited {
            query,
            progress,
            ticket: Arc::new(QueryTicket {
                activity: Arc::clone(activity),
                id: query,
            }),
            kind,
            plan_kind: if kind == "prepare" {
                "prepare"
            } else {
                "unplanned"
            },
            statement: session.next_id(),
            sql: sql.to_string(),
            params: Vec::new(),
            objects: Vec::new(),
            peer,
            started: Instant::now(),
        }
    }

    /// The caller's session: by bearer token (the server's or a JWT), or by connection for
    /// anonymous clients, clients known by their certificate and clients that send basic
    /// credentials with every call. A JWT or a certificate seen for the first time is
    /// recorded as a login.
    async fn session<T>(&self, request: &Request<T>) -> Result<Arc<ClientSession>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str())
            .transpose()
            .map_err(|_| Status::unauthenticated("malformed authorization header"))?;
        let peer = peer_of(request);
        let certificate = self.certificate_user(request)?;
        let principal = match self.auth.principal(header, certificate.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                let status = status_from_auth(&e);
                // a refused JWT or certificate is a failed login; a stale server token is not
                if let AuthError::Rejected(_) | AuthError::Expired = e {
                    let method = if header.is_some() {
                        "jwt"
                    } else {
                        "certificate"
                    };
                    self.record_login(&Identity::default(), peer, method, Err(&status));
                }
                return Err(status);
            }
        };
        let (key, who, login) = match principal {
            Principal::User { name, token } => (
                format!("token:{token}"),
                Identity::of_user(Some(&name)),
                None,
            ),
            Principal::Basic { name } => (
                format!("basic:{name}@{peer}"),
                Identity::of_user(Some(&name)),
                None,
            ),
            Principal::Jwt { identity, token } => (
                format!("jwt:{token}"),
                Identity {
                    user: Some(identity.user),
                    roles: Some(identity.roles),
                },
                Some("jwt"),
            ),
            Principal::Certificate { name } => (
                format!("cert:{name}@{peer}"),
                Identity::of_user(Some(&name)),
                Some("certificate"),
            ),
            Principal::Anonymous => (format!("peer:{peer}"), Identity::of_user(None), None),
        };
        let (session, made) =
            self.sessions
                .get_or_create(&key, &who)
                .await
                .map_err(|e| match e {
                    SessionError::TooMany(e) => Status::resource_exhausted(e.to_string()),
                    SessionError::Setup(e) => status_from_datafusion(e),
                })?;
        if made && let Some(method) = login {
            self.record_login(&who, peer, method, Ok(()));
        }
        Ok(session)
    }

    /// A FlightInfo whose one endpoint's ticket fetches pending query `id`.
    fn query_info(
        &self,
        id: u64,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = TicketStatementQuery {
            statement_handle: Bytes::copy_from_slice(&id.to_be_bytes()),
        };
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(&as_sent(schema))
            .map_err(|e| status_from_flight(FlightError::Arrow(e)))?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor)
            .with_ordered(true);
        Ok(Response::new(info))
    }

    /// A FlightInfo for a metadata command: the ticket is the command itself.
    fn metadata_info(
        &self,
        command: impl ProstMessageExt,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| status_from_flight(FlightError::Arrow(e)))?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    /// Runs the plans of a pending query and streams their batches; cancellable by `id`.
    async fn run(
        &self,
        session: Arc<ClientSession>,
        id: u64,
        pending: Pending,
    ) -> Result<Response<FlightDataStream>, Status> {
        if let Some(audited) = &pending.audit {
            tracing::Span::current().record("db.query.text", audited.sql.as_str());
        }
        if let Some(batches) = pending.ready {
            if let Some(audited) = &pending.audit {
                self.record(&session, audited, Some(count_of(&batches)), Ok(()));
            }
            let encoded = FlightDataEncoderBuilder::new()
                .with_schema(pending.schema)
                .build(stream::iter(batches.into_iter().map(Ok)))
                .map_err(status_from_flight);
            return Ok(Response::new(Box::pin(encoded)));
        }
        let ctx = session.ctx.clone();
        let progress = pending
            .audit
            .as_ref()
            .map_or_else(Default::default, |a| Arc::clone(&a.progress));
        let mut plans = pending.plans.into_iter();
        let first = match plans.next() {
            Some(plan) => match execute(&ctx, plan, &progress)
                .await
                .map_err(status_from_datafusion)
            {
                Ok(stream) => stream,
                Err(status) => {
                    if let Some(audited) = &pending.audit {
                        self.record(&session, audited, None, Err(&status));
                    }
                    return Err(status);
                }
            },
            None => return Err(Status::internal("a query with no plan")),
        };
        let schema = sent_schema(&first.schema(), &pending.schema);
        let rest_ctx = ctx.clone();
        let rest_progress = Arc::clone(&progress);
        let rest = stream::iter(plans)
            .then(move |plan| {
                let ctx = rest_ctx.clone();
                let progress = Arc::clone(&rest_progress);
                async move { execute(&ctx, plan, &progress).await }
            })
            .try_flatten();
        let relabel = Arc::clone(&schema);
        let batches = first
            .chain(rest)
            .and_then(move |b| std::future::ready(with_schema(b, &relabel)))
            .map_err(|e| FlightError::ExternalError(Box::new(e)));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let counted = Arc::clone(&progress);
        let batches = batches.inspect(move |b| {
            if let Ok(batch) = b {
                counted
                    .rows
                    .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            }
        });
        let failed = Arc::clone(&tally);
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(status_from_flight)
            .inspect(move |item| match item {
                Ok(data) => {
                    let n = data.data_header.len() + data.data_body.len();
                    progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(status) => {
                    lock(&failed).error.get_or_insert_with(|| status.clone());
                }
            });

        let (abort, registration) = AbortHandle::new_pair();
        session.start(id, abort.clone());
        if let Some(audited) = &pending.audit {
            self.sessions
                .activity()
                .set_abort(audited.query, abort.clone());
        }
        let audit = pending
            .audit
            .map(|audited| (self.recorder.clone(), audited));
        let done = Finished {
            session,
            id,
            audit,
            tally: Arc::clone(&tally),
        };
        let ended = Arc::clone(&tally);
        let tail = stream::once(async move {
            let _done = done;
            let aborted = abort.is_aborted();
            let mut t = lock(&ended);
            t.ended = true;
            if aborted {
                t.error
                    .get_or_insert_with(|| Status::cancelled("query cancelled"));
            }
            aborted
        })
        .filter_map(|aborted| async move {
            aborted.then(|| Err(Status::cancelled("query cancelled")))
        });
        let out = Abortable::new(encoded, registration).chain(tail);
        Ok(Response::new(Box::pin(out)))
    }

    /// The plans to run for a prepared statement (one per bound parameter row), and what the
    /// audit trail will say of the run.
    fn prepared_run(
        &self,
        peer: String,
        session: &ClientSession,
        handle: &[u8],
    ) -> Result<(Vec<LogicalPlan>, SchemaRef, Audited), Status> {
        let id = decode_id(handle, "prepared statement")?;
        let (plans, schema, sql, params, (objects, plan_kind)) = session
            .with_prepared(id, |p| {
                let wanted = parameter_schema(&p.plan)?.fields().len();
                let plans = if p.params.is_empty() {
                    if wanted > 0 {
                        return Err(DataFusionError::Plan(format!(
                            "the statement has {wanted} parameter(s) and none were bound"
                        )));
                    }
                    vec![p.plan.clone()]
                } else {
                    p.params
                        .iter()
                        .map(|row| bind(&p.plan, row))
                        .collect::<datafusion::error::Result<Vec<_>>>()?
                };
                Ok((
                    plans,
                    Arc::clone(&p.dataset_schema),
                    p.sql.clone(),
                    params_text(&p.params),
                    Audited::describe(&p.plan),
                ))
            })
            .ok_or_else(|| not_found_handle("prepared statement", id))?
            .map_err(status_from_datafusion)?;
        let mut audited = self.audited_from(peer, session, "statement", &sql);
        audited.params = params;
        audited.objects = objects;
        audited.plan_kind = plan_kind;
        Ok((plans, schema, audited))
    }

    /// Cancels the queries whose tickets are in `info`.
    fn cancel(&self, session: &ClientSession, info: &FlightInfo) -> CancelStatus {
        let mut status = CancelStatus::NotCancellable;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else {
                continue;
            };
            let Ok(any) = Any::decode(ticket.ticket.clone()) else {
                continue;
            };
            if let Ok(Some(t)) = any.unpack::<TicketStatementQuery>()
                && let Ok(id) = decode_id(&t.statement_handle, "query")
                && session.cancel(id)
            {
                status = CancelStatus::Cancelled;
            }
        }
        status
    }
}

/// How a result stream ended, for the audit trail.
#[derive(Debug, Default)]
struct Tally {
    error: Option<Status>,
    ended: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks a query finished when its result stream ends or is dropped, and records it in the
/// audit trail: rows sent, and how it ended (a stream dropped before its end was abandoned by
/// the client).
struct Finished {
    session: Arc<ClientSession>,
    id: u64,
    audit: Option<(Recorder, Audited)>,
    tally: Arc<Mutex<Tally>>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.session.finish(self.id);
        if let Some((recorder, audited)) = &self.audit {
            let t = lock(&self.tally);
            let abandoned = Status::cancelled("the client stopped reading the result");
            let result = match (&t.error, t.ended) {
                (Some(status), _) => Err(status),
                (None, true) => Ok(()),
                (None, false) => Err(&abandoned),
            };
            let rows = audited.progress.rows.load(Ordering::Relaxed);
            recorder.statement(&self.session, audited, Some(rows), result);
        }
    }
}

/// Where a statement's end is recorded: `system.queries`, the metrics, the audit trail.
#[derive(Clone)]
struct Recorder {
    audit: Option<Arc<AuditLog>>,
    metrics: Option<Arc<ServerMetrics>>,
    sessions: Arc<SessionStore>,
}

impl Recorder {
    /// Ends a statement in `system.queries`, counts it, and appends its record to the audit
    /// trail (an append that fails is reported on stderr).
    fn statement(
        &self,
        session: &ClientSession,
        audited: &Audited,
        rows: Option<u64>,
        result: Result<(), &Status>,
    ) {
        let state = match result {
            Ok(()) => QueryState::Done,
            Err(status) if status.code() == tonic::Code::Cancelled => QueryState::Cancelled,
            Err(_) => QueryState::Failed,
        };
        let error = result.err().map(|s| s.message().to_string());
        self.sessions
            .activity()
            .finish(audited.query, rows, state, error);
        let duration = audited.started.elapsed();
        if let Some(metrics) = &self.metrics {
            let (rows_scanned, bytes_scanned) = audited.progress.scanned();
            metrics.statement(&StatementFigures {
                kind: audited.plan_kind,
                outcome: match result {
                    Ok(()) => StatementOutcome::Ok,
                    Err(s) if s.code() == tonic::Code::PermissionDenied => StatementOutcome::Denied,
                    Err(s) if s.code() == tonic::Code::Cancelled => StatementOutcome::Cancelled,
                    Err(_) => StatementOutcome::Error,
                },
                duration,
                rows: rows.unwrap_or(0),
                bytes_sent: audited.progress.bytes.load(Ordering::Relaxed),
                rows_scanned,
                bytes_scanned,
            });
        }
        let Some(log) = &self.audit else {
            return;
        };
        let event = Event {
            kind: audited.kind,
            user: session.user.clone(),
            roles: session.roles.clone(),
            peer: audited.peer.clone(),
            session: Some(session.id),
            statement: Some(audited.statement),
            sql: Some(audited.sql.clone()),
            params: audited.params.clone(),
            objects: audited.objects.clone(),
            rows,
            duration,
            outcome: Some(outcome_of(result)),
        };
        if let Err(e) = log.append(&event) {
            eprintln!("vcfq serve: cannot append to {}: {e}", log.path().display());
        }
    }
}

/// The audit outcome of a request's result.
fn outcome_of(result: Result<(), &Status>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(status) if status.code() == tonic::Code::PermissionDenied => {
            Outcome::Denied(status.message().to_string())
        }
        Err(status) => Outcome::Error(code_name(status.code()), status.message().to_string()),
    }
}

/// The rows a command's result counts (its `count` column), or its rows.
fn count_of(batches: &[RecordBatch]) -> u64 {
    let mut total = 0u64;
    for batch in batches {
        match batch.column_by_name("count").and_then(|c| {
            c.as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
        }) {
            Some(values) => total += values.iter().flatten().sum::<u64>(),
            None => total += batch.num_rows() as u64,
        }
    }
    total
}

/// The client's address, as the audit trail and anonymous sessions name it.
fn peer_of<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

/// Parameter rows as text, for the audit trail.
fn params_text(rows: &[Vec<datafusion::common::ScalarValue>]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|row| row.iter().map(ToString::to_string).collect())
        .collect()
}

/// Whether a plan is a command (DDL, `SET`, `INSERT`, `COPY`) rather than a query.
fn is_command(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
    )
}

/// A pending query for `GetFlightInfo`. Commands run here, at once: clients (ADBC's DB-API
/// among them) may never fetch the result of a `CREATE` or `INSERT`, and the next statement
/// must see its effect. Their small results (row counts) wait for the ticket.
async fn prepare_run(
    ctx: &datafusion::prelude::SessionContext,
    plans: Vec<LogicalPlan>,
    schema: SchemaRef,
    audit: Audited,
) -> Result<Pending, Status> {
    let progress = Arc::clone(&audit.progress);
    if plans.is_empty() || !plans.iter().all(is_command) {
        return Ok(Pending {
            plans,
            schema,
            ready: None,
            audit: Some(audit),
        });
    }
    let mut batches = Vec::new();
    for plan in plans {
        batches.extend(collect(ctx, plan, &progress).await?);
    }
    Ok(Pending {
        plans: Vec::new(),
        schema,
        ready: Some(batches),
        audit: Some(audit),
    })
}

/// Starts a plan; its physical plan is kept in `progress` (what its scans read is counted
/// from it when the statement ends).
async fn execute(
    ctx: &datafusion::prelude::SessionContext,
    plan: LogicalPlan,
    progress: &Progress,
) -> datafusion::error::Result<datafusion::execution::SendableRecordBatchStream> {
    let df = ctx.execute_logical_plan(plan).await?;
    let task = Arc::new(df.task_ctx());
    let physical = df.create_physical_plan().await?;
    progress.ran(Arc::clone(&physical));
    datafusion::physical_plan::execute_stream(physical, task)
}

/// Runs a plan to its end ([`execute`], collected).
async fn collect(
    ctx: &datafusion::prelude::SessionContext,
    plan: LogicalPlan,
    progress: &Progress,
) -> Result<Vec<RecordBatch>, Status> {
    execute(ctx, plan, progress)
        .await
        .map_err(status_from_datafusion)?
        .try_collect()
        .await
        .map_err(status_from_datafusion)
}

/// Runs a statement that returns no rows to the client; the number of rows it changed.
async fn rows_affected(
    ctx: &datafusion::prelude::SessionContext,
    plan: LogicalPlan,
    progress: &Progress,
) -> Result<i64, Status> {
    let counts = matches!(plan, LogicalPlan::Dml(_) | LogicalPlan::Copy(_));
    let changes_nothing = matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_));
    if !counts && !changes_nothing {
        return Err(Status::invalid_argument(
            "the statement returns rows: run it as a query, not an update",
        ));
    }
    let batches = collect(ctx, plan, progress).await?;
    if !counts {
        return Ok(0);
    }
    let mut total: u64 = 0;
    for batch in &batches {
        if let Some(column) = batch.column_by_name("count")
            && let Some(values) = column
                .as_any()
                .downcast_ref::<datafusion::arrow::array::UInt64Array>()
        {
            total += values.iter().flatten().sum::<u64>();
        }
    }
    Ok(i64::try_from(total).unwrap_or(i64::MAX))
}

type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

/// The handshake's answer: the bearer token, in the payload and the `authorization` header.
fn handshake_reply(token: String) -> Result<Response<HandshakeStream>, Status> {
    let value = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| Status::internal("token is not a valid header value"))?;
    let reply = HandshakeResponse {
        protocol_version: 0,
        payload: Bytes::from(token),
    };
    let mut response: Response<HandshakeStream> =
        Response::new(Box::pin(stream::iter([Ok(reply)])));
    response.metadata_mut().insert("authorization", value);
    Ok(response)
}

fn decode_id(handle: &[u8], what: &str) -> Result<u64, Status> {
    let bytes: [u8; 8] = handle
        .try_into()
        .map_err(|_| Status::invalid_argument(format!("malformed {what} handle")))?;
    Ok(u64::from_be_bytes(bytes))
}

fn not_found_handle(what: &str, id: u64) -> Status {
    Status::not_found(format!(
        "{what} handle {id} not found in this session (closed, already fetched, or made on another connection)"
    ))
}

/// The schema results are streamed with: the plan's own, with a column nullable wherever the
/// schema announced by GetFlightInfo (the logical plan's) says so. Optimisation can prove a
/// column non-null after planning (a folded constant), and clients reject a stream whose
/// schema differs from the one announced (ADBC: "endpoint 0 returned inconsistent schema").
fn sent_schema(physical: &SchemaRef, announced: &Schema) -> SchemaRef {
    if physical.fields().len() != announced.fields().len() {
        return Arc::clone(physical);
    }
    let fields: Vec<Field> = physical
        .fields()
        .iter()
        .zip(announced.fields())
        .map(|(p, a)| {
            p.as_ref()
                .clone()
                .with_nullable(p.is_nullable() || a.is_nullable())
        })
        .collect();
    Arc::new(Schema::new_with_metadata(
        fields,
        physical.metadata().clone(),
    ))
}

/// `batch` relabelled with `schema` (the same columns, nullability widened).
fn with_schema(batch: RecordBatch, schema: &SchemaRef) -> datafusion::error::Result<RecordBatch> {
    if batch.schema_ref() == schema {
        return Ok(batch);
    }
    let rows = batch.num_rows();
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        batch.columns().to_vec(),
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// A schema as results are sent: the Flight encoder sends dictionary-encoded columns (`sample`
/// and `GT` of `vcf_genotypes`) as their plain values, so the schemas the server announces say
/// the same.
fn as_sent(schema: &Schema) -> Schema {
    fn field(f: &Field) -> Field {
        let t = match f.data_type() {
            DataType::Dictionary(_, value) => value.as_ref().clone(),
            DataType::List(item) => DataType::List(Arc::new(field(item))),
            DataType::LargeList(item) => DataType::LargeList(Arc::new(field(item))),
            DataType::FixedSizeList(item, n) => DataType::FixedSizeList(Arc::new(field(item)), *n),
            DataType::Struct(children) => {
                DataType::Struct(children.iter().map(|c| field(c)).collect::<Vec<_>>().into())
            }
            other => other.clone(),
        };
        f.clone().with_data_type(t)
    }
    Schema::new_with_metadata(
        schema.fields().iter().map(|f| field(f)).collect::<Vec<_>>(),
        schema.metadata().clone(),
    )
}

fn schema_bytes(schema: &Schema) -> Result<Bytes, Status> {
    let schema = as_sent(schema);
    let message: Result<IpcMessage, _> =
        SchemaAsIpc::new(&schema, &IpcWriteOptions::default()).try_into();
    message
        .map(|m| m.0)
        .map_err(|e| status_from_flight(FlightError::Arrow(e)))
}

/// An answer with no rows.
fn no_rows(schema: Schema) -> Response<FlightDataStream> {
    batch_stream(RecordBatch::new_empty(Arc::new(schema)))
}

/// One batch as a Flight data stream.
fn batch_stream(batch: RecordBatch) -> Response<FlightDataStream> {
    let schema = batch.schema();
    let out = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(stream::once(async move { Ok(batch) }))
        .map_err(status_from_flight);
    Response::new(Box::pin(out))
}

/// The schemas of one catalog, sorted, with `information_schema` (which DataFusion answers
/// queries about but does not list among a catalog's schemas).
fn schemas_of(
    ctx: &datafusion::prelude::SessionContext,
    catalog: &dyn datafusion::catalog::CatalogProvider,
) -> Vec<(String, Arc<dyn datafusion::catalog::SchemaProvider>)> {
    let mut out: Vec<(String, Arc<dyn datafusion::catalog::SchemaProvider>)> = catalog
        .schema_names()
        .into_iter()
        .filter_map(|name| catalog.schema(&name).map(|schema| (name, schema)))
        .collect();
    let state = ctx.state();
    if state.config().information_schema() && !out.iter().any(|(n, _)| n == "information_schema") {
        let info = datafusion::catalog::information_schema::InformationSchemaProvider::new(
            Arc::clone(state.catalog_list()),
        );
        out.push(("information_schema".to_string(), Arc::new(info)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn table_type_name(schema: &str, provider: &dyn TableProvider) -> &'static str {
    if schema == "information_schema" {
        return "SYSTEM TABLE";
    }
    match provider.table_type() {
        TableType::Base => "TABLE",
        TableType::View => "VIEW",
        TableType::Temporary => "LOCAL TEMPORARY",
    }
}

const TABLE_TYPES: [&str; 4] = ["LOCAL TEMPORARY", "SYSTEM TABLE", "TABLE", "VIEW"];

/// Schema of `GetPrimaryKeys` answers (always empty: vcfq tables have no keys).
fn primary_keys_schema() -> Schema {
    Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ])
}

/// Schema of `GetImportedKeys`/`GetExportedKeys`/`GetCrossReference` answers (always empty).
fn foreign_keys_schema() -> Schema {
    Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ])
}

fn sql_info() -> Result<&'static SqlInfoData, Status> {
    SQL_INFO.as_ref().map_err(|e| Status::internal(e.clone()))
}

fn xdbc_info() -> Result<&'static XdbcTypeInfoData, Status> {
    XDBC_TYPE_INFO
        .as_ref()
        .map_err(|e| Status::internal(e.clone()))
}

#[tonic::async_trait]
impl FlightSqlService for VcfqFlightSql {
    type FlightService = VcfqFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let peer = peer_of(&request);
        let certificate = self.certificate_user(&request)?;
        let mut attempted: Option<String> = None;
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().map(str::to_string))
            .transpose()
            .map_err(|_| Status::unauthenticated("malformed authorization header"))?;
        // a JWT is its own bearer token: the handshake checks it and hands it back (JDBC's
        // `token=` logs in this way); roles come with it
        if let Some(token) = header.as_deref().and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .map(str::trim)
                .filter(|t| looks_like_jwt(t))
        }) {
            let token = token.to_string();
            return match self.auth.verify_jwt(&token) {
                Ok(identity) => {
                    let who = Identity {
                        user: Some(identity.user),
                        roles: Some(identity.roles),
                    };
                    self.record_login(&who, peer, "jwt", Ok(()));
                    handshake_reply(token)
                }
                Err(e) => {
                    let status = status_from_auth(&e);
                    self.record_login(&Identity::default(), peer, "jwt", Err(&status));
                    Err(status)
                }
            };
        }
        let (method, login) = match header {
            Some(header) => {
                attempted = parse_basic(&header).ok().map(|(user, _)| user);
                ("password", self.auth.login_basic(&header))
            }
            None => {
                // older clients put a BasicAuth message in the handshake payload
                let mut requests = request.into_inner();
                let first = requests.message().await?;
                match first.map(|r| arrow_flight::BasicAuth::decode(r.payload)) {
                    Some(Ok(basic)) if !basic.username.is_empty() => {
                        attempted = Some(basic.username.clone());
                        (
                            "password",
                            self.auth.login(&basic.username, &basic.password),
                        )
                    }
                    _ => match certificate {
                        // mutual TLS: the certificate is the credential
                        Some(name) => {
                            attempted = Some(name.clone());
                            ("certificate", self.auth.login_certificate(&name))
                        }
                        None => ("anonymous", self.auth.login_anonymous()),
                    },
                }
            }
        };
        let token = match login {
            Ok((user, token)) => {
                // an anonymous login's user is empty
                let user = (!user.is_empty()).then_some(user);
                self.record_login(&Identity::of_user(user.as_deref()), peer, method, Ok(()));
                token
            }
            Err(e) => {
                let status = status_from_auth(&e);
                self.record_login(
                    &Identity::of_user(attempted.as_deref()),
                    peer,
                    method,
                    Err(&status),
                );
                return Err(status);
            }
        };
        handshake_reply(token)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request).await?;
        let mut audited = self.audited(&request, &session, "statement", &query.query);
        let planned = async {
            let plan = crate::session::logical_plan(&session.ctx, &query.query)
                .await
                .map_err(status_from_datafusion)?;
            audited.planned(&plan);
            // DDL and SET take effect here, as soon as the client sends them
            let df = session
                .ctx
                .execute_logical_plan(plan)
                .await
                .map_err(status_from_datafusion)?;
            let schema: Schema = df.schema().as_arrow().clone();
            let plan = df.into_unoptimized_plan();
            let pending = prepare_run(
                &session.ctx,
                vec![plan],
                Arc::new(schema.clone()),
                audited.clone(),
            )
            .await?;
            Ok::<_, Status>((pending, schema))
        }
        .await;
        let (pending, schema) = match planned {
            Ok(planned) => planned,
            Err(status) => {
                self.record(&session, &audited, None, Err(&status));
                return Err(status);
            }
        };
        let id = session.add_pending(pending);
        self.query_info(id, &schema, request.into_inner())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request).await?;
        let (plans, schema, audited) =
            self.prepared_run(peer_of(&request), &session, &cmd.prepared_statement_handle)?;
        let pending = prepare_run(&session.ctx, plans, Arc::clone(&schema), audited.clone())
            .await
            .inspect_err(|status| self.record(&session, &audited, None, Err(status)))?;
        let id = session.add_pending(pending);
        self.query_info(id, &schema, request.into_inner())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        let schema = GetCatalogsBuilder::new().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        let schema = query.clone().into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        let schema = query.clone().into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        let schema = query.into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        let schema = query.clone().into_builder(sql_info()?).schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        self.metadata_info(query, &primary_keys_schema(), request.into_inner())
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        self.metadata_info(query, &foreign_keys_schema(), request.into_inner())
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        self.metadata_info(query, &foreign_keys_schema(), request.into_inner())
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        self.metadata_info(query, &foreign_keys_schema(), request.into_inner())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request).await?;
        let schema = query.into_builder(xdbc_info()?).schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let id = decode_id(&ticket.statement_handle, "query")?;
        let pending = session
            .take_pending(id)
            .ok_or_else(|| not_found_handle("query", id))?;
        self.run(session, id, pending).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        // a client may fetch with the prepared statement itself as the ticket
        let session = self.session(&request).await?;
        let (plans, schema, audited) = self.prepared_run(
            peer_of(&request),
            &session,
            &query.prepared_statement_handle,
        )?;
        let pending = prepare_run(&session.ctx, plans, schema, audited.clone())
            .await
            .inspect_err(|status| self.record(&session, &audited, None, Err(status)))?;
        let id = session.next_id();
        self.run(session, id, pending).await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let mut builder = query.into_builder();
        let mut names = session.ctx.catalog_names();
        names.sort();
        for name in names {
            builder.append(name);
        }
        Ok(batch_stream(builder.build().map_err(status_from_flight)?))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let mut builder = query.into_builder();
        for catalog_name in session.ctx.catalog_names() {
            let Some(catalog) = session.ctx.catalog(&catalog_name) else {
                continue;
            };
            for (schema_name, _) in schemas_of(&session.ctx, catalog.as_ref()) {
                builder.append(&catalog_name, schema_name);
            }
        }
        Ok(batch_stream(builder.build().map_err(status_from_flight)?))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request).await?;
        let mut builder = query.into_builder();
        for catalog_name in session.ctx.catalog_names() {
            let Some(catalog) = session.ctx.catalog(&catalog_name) else {
                continue;
            };
            for (schema_name, schema) in schemas_of(&session.ctx, catalog.as_ref()) {
                let mut tables = schema.table_names();
                tables.sort();
                for table_name in tables {
                    let Some(provider) = schema
                        .table(&table_name)
                        .await
                        .map_err(status_from_datafusion)?
                    else {
                        continue;
                    };
                    builder
                        .append(
                            &catalog_name,
                            &schema_name,
                            &table_name,
                            table_type_name(&schema_name, provider.as_ref()),
                            &as_sent(provider.schema().as_ref()),
                        )
                        .map_err(status_from_flight)?;
                }
            }
        }
        Ok(batch_stream(builder.build().map_err(status_from_flight)?))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(&request).await?;
        let mut builder = query.into_builder();
        for t in TABLE_TYPES {
            builder.append(t);
        }
        Ok(batch_stream(builder.build().map_err(status_from_flight)?))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(&request).await?;
        let batch = query
            .into_builder(sql_info()?)
            .build()
            .map_err(status_from_flight)?;
        Ok(batch_stream(batch))
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(&request).await?;
        Ok(no_rows(primary_keys_schema()))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(&request).await?;
        Ok(no_rows(foreign_keys_schema()))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(&request).await?;
        Ok(no_rows(foreign_keys_schema()))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(&request).await?;
        Ok(no_rows(foreign_keys_schema()))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(&request).await?;
        let batch = query
            .into_builder(xdbc_info()?)
            .build()
            .map_err(status_from_flight)?;
        Ok(batch_stream(batch))
    }

    async fn do_put_statement_update(
        &self,
        ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request).await?;
        let mut audited = self.audited(&request, &session, "statement", &ticket.query);
        let result = async {
            let plan = crate::session::logical_plan(&session.ctx, &ticket.query)
                .await
                .map_err(status_from_datafusion)?;
            audited.planned(&plan);
            rows_affected(&session.ctx, plan, &audited.progress).await
        }
        .await;
        let rows = result.as_ref().ok().map(|&n| u64::try_from(n).unwrap_or(0));
        self.record(&session, &audited, rows, result.as_ref().map(|_| ()));
        result
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let session = self.session(&request).await?;
        let id = decode_id(&query.prepared_statement_handle, "prepared statement")?;
        let rows = bound_rows(request).await?;
        session
            .with_prepared(id, |p| p.params = rows)
            .ok_or_else(|| not_found_handle("prepared statement", id))?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(&request).await?;
        let id = decode_id(&query.prepared_statement_handle, "prepared statement")?;
        let peer = peer_of(&request);
        // parameters come with the update itself (or were bound before)
        let rows = bound_rows(request).await?;
        if !rows.is_empty() {
            session
                .with_prepared(id, |p| p.params = rows)
                .ok_or_else(|| not_found_handle("prepared statement", id))?;
        }
        let (plans, _, audited) =
            self.prepared_run(peer, &session, &query.prepared_statement_handle)?;
        let result = async {
            let mut total = 0;
            for plan in plans {
                total += rows_affected(&session.ctx, plan, &audited.progress).await?;
            }
            Ok::<_, Status>(total)
        }
        .await;
        let rows = result.as_ref().ok().map(|&n| u64::try_from(n).unwrap_or(0));
        self.record(&session, &audited, rows, result.as_ref().map(|_| ()));
        result
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(&request).await?;
        let sql = number_placeholders(&query.query);
        let mut audited = self.audited(&request, &session, "prepare", &query.query);
        let planned = crate::session::logical_plan(&session.ctx, &sql)
            .await
            .map_err(status_from_datafusion);
        if let Ok(plan) = &planned {
            audited.objects = Audited::describe(plan).0;
        }
        self.record(&session, &audited, None, planned.as_ref().map(|_| ()));
        let plan = planned?;
        let dataset_schema: Schema = plan.schema().as_arrow().clone();
        let parameter_schema = parameter_schema(&plan).map_err(status_from_datafusion)?;
        let handle = session.add_prepared(Prepared {
            sql: query.query.clone(),
            plan,
            dataset_schema: Arc::new(dataset_schema.clone()),
            params: Vec::new(),
        });
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Bytes::copy_from_slice(&handle.to_be_bytes()),
            dataset_schema: schema_bytes(&dataset_schema)?,
            parameter_schema: schema_bytes(&parameter_schema)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let session = self.session(&request).await?;
        let id = decode_id(&query.prepared_statement_handle, "prepared statement")?;
        // closing twice (or after the session was reaped) is not an error
        session.close_prepared(id);
        Ok(())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let session = self.session(&request).await?;
        let info = FlightInfo::decode(query.info)
            .map_err(|e| Status::invalid_argument(format!("malformed FlightInfo: {e}")))?;
        // ActionCancelQueryResult.CancelResult: 1 CANCELLED, 3 NOT_CANCELLABLE (the enum's
        // module is not exported by arrow-flight)
        let result = match self.cancel(&session, &info) {
            CancelStatus::Cancelled => 1,
            _ => 3,
        };
        Ok(ActionCancelQueryResult { result })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        if request.get_ref().r#type != CANCEL_FLIGHT_INFO {
            return Err(Status::invalid_argument(format!(
                "unknown action {:?}",
                request.get_ref().r#type
            )));
        }
        let session = self.session(&request).await?;
        let cancel =
            CancelFlightInfoRequest::decode(request.get_ref().body.clone()).map_err(|e| {
                Status::invalid_argument(format!("malformed CancelFlightInfoRequest: {e}"))
            })?;
        let info = cancel.info.ok_or_else(|| {
            Status::invalid_argument("CancelFlightInfoRequest without FlightInfo")
        })?;
        let result = CancelFlightInfoResult::new(self.cancel(&session, &info));
        let body = arrow_flight::Result::new(result.encode_to_vec());
        Ok(Response::new(Box::pin(stream::iter([Ok(body)]))))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: CANCEL_FLIGHT_INFO.to_string(),
            description:
                "Cancel a query: request CancelFlightInfoRequest, result CancelFlightInfoResult"
                    .to_string(),
        })])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// The parameter rows a client sent in a DoPut stream.
async fn bound_rows(
    request: Request<PeekableFlightDataStream>,
) -> Result<Vec<Vec<datafusion::common::ScalarValue>>, Status> {
    // the peekable stream still holds the first message (descriptor, and the schema unless
    // the client sends no parameters: then it is a descriptor alone, with no IPC header)
    let flight_data = request
        .into_inner()
        .try_filter(|data| futures::future::ready(!data.data_header.is_empty()))
        .map_err(FlightError::from);
    let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(flight_data)
        .try_collect()
        .await
        .map_err(status_from_flight)?;
    rows_of(&batches).map_err(status_from_datafusion)
}
