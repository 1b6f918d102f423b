//! The cluster's processes with vcfq inside: `vcfq scheduler`, `vcfq executor`, and both in
//! this process ([`standalone`], for tests and trials). Every one of them plans and runs with
//! a vcfq session (its functions, table functions, rules and `vcf.*` settings) and vcfq's
//! codecs. By default the scheduler pushes tasks to executors as soon as a slot is free
//! (Ballista's push-staged scheduling; executors listen on a second port for it); with
//! [`Scheduling::Pull`] executors ask for work instead, which needs no port on the executor
//! for the scheduler but leaves a slot idle for up to 50 ms whenever a poll finds nothing.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use async_trait::async_trait;
use ballista_core::JobId;
use ballista_core::serde::protobuf::{ExecutorRegistration, PollWorkParams, ShuffleWritePartition};
use ballista_core::serde::scheduler::{
    ExecutorOperatingSystemSpecification, ExecutorSpecification,
};
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use ballista_executor::executor::Executor;
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::metrics::LoggingMetricsCollector;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SessionState, SessionStateBuilder, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_core::{ConfigProducer, RuntimeProducer};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::SessionBuilder as StateBuilder;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::create_scheduler;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tonic::transport::server::TcpIncoming;

use super::cluster_config;
use super::codec::{VcfLogicalCodec, VcfPhysicalCodec};
use crate::SessionBuilder;

fn ballista(e: ballista_core::error::BallistaError) -> DataFusionError {
    match e {
        ballista_core::error::BallistaError::DataFusionError(e) => *e,
        other => DataFusionError::External(Box::new(other)),
    }
}

/// Makes the session state of a job from the configuration its client sent; its planning
/// errors are marked for the client.
fn state_builder(base: &SessionBuilder) -> StateBuilder {
    let base = base.clone();
    Arc::new(move |config: SessionConfig| {
        let state = base.clone().with_config(config).build()?.state();
        Ok(SessionStateBuilder::new_from_existing(state)
            .with_query_planner(Arc::new(MarkedPlanner::default()))
            .build())
    })
}

/// DataFusion's planner, with its errors marked for the client.
#[derive(Default)]
struct MarkedPlanner(DefaultPhysicalPlanner);

impl fmt::Debug for MarkedPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MarkedPlanner")
    }
}

#[async_trait]
impl QueryPlanner for MarkedPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &SessionState,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0
            .create_physical_plan(logical_plan, session_state)
            .await
            .map_err(mark)
    }
}

/// The configuration jobs start from (the client's settings are applied to it).
fn config_producer(base: &SessionBuilder) -> ConfigProducer {
    let config = cluster_config(base.config());
    Arc::new(move || config.clone())
}

fn codec() -> BallistaCodec {
    BallistaCodec::new(
        Arc::new(VcfLogicalCodec::default()),
        Arc::new(VcfPhysicalCodec::default()),
    )
}

/// The functions executors know by name: DataFusion's and vcfq's.
fn function_registry(base: &SessionBuilder) -> Result<BallistaFunctionRegistry> {
    let state = base
        .clone()
        .with_config(cluster_config(base.config()))
        .build()?
        .state();
    Ok(BallistaFunctionRegistry::from(&state))
}

/// Ballista's execution engine, with the errors of tasks marked so that the client prints
/// them as a local run would ([`crate::error::mark_for_client`]); I/O failures stay as they
/// are (Ballista retries those tasks).
struct MarkedErrors(DefaultExecutionEngine);

impl MarkedErrors {
    fn new() -> Self {
        MarkedErrors(DefaultExecutionEngine::new())
    }
}

fn mark(e: DataFusionError) -> DataFusionError {
    if matches!(e.find_root(), DataFusionError::IoError(_)) {
        e
    } else {
        crate::error::mark_for_client(e)
    }
}

impl ExecutionEngine for MarkedErrors {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        partition_id: usize,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> Result<Arc<dyn QueryStageExecutor>> {
        // below the stage's shuffle writer, which would report its input's errors in their
        // debug form: a node that marks them first, with their types still there
        let plan = match plan.children().as_slice() {
            [input] => {
                let marked: Arc<dyn ExecutionPlan> =
                    Arc::new(MarkErrorsExec::new(Arc::clone(input)));
                Arc::clone(&plan).with_new_children(vec![marked])?
            }
            _ => plan,
        };
        let stage = self
            .0
            .create_query_stage_exec(job_id, stage_id, partition_id, plan, work_dir, config)
            .map_err(mark)?;
        Ok(Arc::new(MarkedStage(stage)))
    }
}

/// Passes its input's batches on and marks its errors for the client.
#[derive(Debug)]
struct MarkErrorsExec {
    input: Arc<dyn ExecutionPlan>,
}

impl MarkErrorsExec {
    fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        MarkErrorsExec { input }
    }
}

impl DisplayAs for MarkErrorsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("MarkErrorsExec")
    }
}

impl ExecutionPlan for MarkErrorsExec {
    fn name(&self) -> &str {
        "MarkErrorsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match <[_; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(MarkErrorsExec::new(input))),
            Err(_) => datafusion::common::internal_err!("MarkErrorsExec has one input"),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        super::map_errors(self.input.execute(partition, context), mark)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        None
    }
}

/// A query stage whose errors are marked.
#[derive(Debug)]
struct MarkedStage(Arc<dyn QueryStageExecutor>);

impl fmt::Display for MarkedStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[async_trait]
impl QueryStageExecutor for MarkedStage {
    async fn execute_query_stage(
        &self,
        input_partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<Vec<ShuffleWritePartition>> {
        self.0
            .execute_query_stage(input_partition, context)
            .await
            .map_err(mark)
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        self.0.collect_plan_metrics()
    }
}

/// How tasks reach executors; the scheduler and its executors must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduling {
    /// The scheduler sends a task to an executor's task port as soon as a slot is free.
    #[default]
    Push,
    /// Executors poll the scheduler for tasks (an idle executor polls every 50 ms).
    Pull,
}

impl From<Scheduling> for TaskSchedulingPolicy {
    fn from(s: Scheduling) -> Self {
        match s {
            Scheduling::Push => TaskSchedulingPolicy::PushStaged,
            Scheduling::Pull => TaskSchedulingPolicy::PullStaged,
        }
    }
}

/// Where `vcfq scheduler` listens.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address to bind (`0.0.0.0` for every interface).
    pub bind_host: String,
    /// Port (0: one the system picks).
    pub port: u16,
    /// The host name executors and clients reach it by (default: `bind_host`).
    pub external_host: Option<String>,
    /// How tasks reach executors.
    pub scheduling: Scheduling,
}

/// Runs a scheduler until the process ends. `ready` gets the address it listens on, once it
/// does (`vcfq scheduler` prints it).
pub async fn run_scheduler(
    base: SessionBuilder,
    options: SchedulerOptions,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let host: std::net::IpAddr = options.bind_host.parse().map_err(|_| {
        DataFusionError::Configuration(format!(
            "scheduler: '{}' is not an IP address to bind",
            options.bind_host
        ))
    })?;
    let incoming = TcpIncoming::bind(SocketAddr::new(host, options.port)).map_err(|e| {
        DataFusionError::Execution(format!(
            "scheduler: cannot listen on {}:{}: {e}",
            options.bind_host, options.port
        ))
    })?;
    let addr = incoming
        .local_addr()
        .map_err(|e| DataFusionError::Execution(format!("scheduler: {e}")))?;
    let config = SchedulerConfig {
        bind_host: options.bind_host.clone(),
        bind_port: addr.port(),
        external_host: options.external_host.unwrap_or(options.bind_host),
        scheduling_policy: options.scheduling.into(),
        override_session_builder: Some(state_builder(&base)),
        override_config_producer: Some(config_producer(&base)),
        override_logical_codec: Some(Arc::new(VcfLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(VcfPhysicalCodec::default())),
        ..Default::default()
    };
    let max_decoding = config.grpc_server_max_decoding_message_size as usize;
    let max_encoding = config.grpc_server_max_encoding_message_size as usize;
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ballista)?;
    let scheduler: SchedulerServer<LogicalPlanNode, PhysicalPlanNode> =
        create_scheduler(cluster, Arc::new(config))
            .await
            .map_err(ballista)?;
    let service = SchedulerGrpcServer::new(scheduler)
        .max_decoding_message_size(max_decoding)
        .max_encoding_message_size(max_encoding);
    ready(addr);
    create_grpc_server(&GrpcServerConfig::default())
        .add_service(service)
        .serve_with_incoming(incoming)
        .await
        .map_err(|e| DataFusionError::Execution(format!("scheduler: {e}")))
}

/// How `vcfq executor` runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `host:port` (or `df://host:port`).
    pub scheduler: String,
    /// Address to bind.
    pub bind_host: String,
    /// The port clients and other executors fetch results from.
    pub port: u16,
    /// The port the scheduler sends tasks to (push scheduling only).
    pub task_port: u16,
    /// How tasks reach it (as the scheduler was told).
    pub scheduling: Scheduling,
    /// The host name others reach it by (default: `bind_host`).
    pub external_host: Option<String>,
    /// Tasks run at once (0: one per core).
    pub concurrency: usize,
    /// Where shuffle files go (default: a directory under the system's temporary one).
    pub work_dir: Option<PathBuf>,
}

/// Asks the scheduler at `url` how it hands out tasks, without side effects: a poll without
/// an executor's description is refused as unsupported by a pushing scheduler and as
/// incomplete by a polling one. `None` when it cannot be reached (the executor's own
/// connection attempts report that).
async fn scheduler_scheduling(url: &str) -> Option<Scheduling> {
    let ask = async {
        let mut client = SchedulerGrpcClient::connect(url.to_string()).await.ok()?;
        let answer = client
            .poll_work(PollWorkParams {
                metadata: None,
                num_free_slots: 0,
                task_status: vec![],
            })
            .await;
        match answer {
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                Some(Scheduling::Push)
            }
            Err(status) if status.code() == tonic::Code::InvalidArgument => Some(Scheduling::Pull),
            _ => None,
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ask)
        .await
        .ok()
        .flatten()
}

/// Runs an executor until the process ends (or the scheduler tells it to stop). Fails at once
/// when the scheduler hands out tasks the other way (an executor that waits for pushed tasks
/// of a polled scheduler would never get one).
pub async fn run_executor(base: SessionBuilder, options: ExecutorOptions) -> Result<()> {
    let (host, port) = super::scheduler_address(&options.scheduler)?;
    match scheduler_scheduling(&format!("http://{host}:{port}")).await {
        Some(theirs) if theirs != options.scheduling => {
            let flag = match theirs {
                Scheduling::Push => "push",
                Scheduling::Pull => "pull",
            };
            return Err(DataFusionError::Configuration(format!(
                "executor: the scheduler at df://{host}:{port} uses {flag} scheduling; \
                 start the executor with --scheduling {flag}"
            )));
        }
        _ => {}
    }
    let work_dir = match options.work_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("vcfq-executor-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir).map_err(|e| {
        DataFusionError::Execution(format!("executor: {}: {e}", work_dir.display()))
    })?;
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: Some(options.external_host.unwrap_or(options.bind_host)),
        port: options.port,
        grpc_port: options.task_port,
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        concurrent_tasks: options.concurrency,
        task_scheduling_policy: options.scheduling.into(),
        work_dir: Some(work_dir.to_string_lossy().into_owned()),
        print_thread_info: false,
        override_function_registry: Some(Arc::new(function_registry(&base)?)),
        override_config_producer: Some(config_producer(&base)),
        override_logical_codec: Some(Arc::new(VcfLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(VcfPhysicalCodec::default())),
        override_execution_engine: Some(Arc::new(MarkedErrors::new())),
        ..Default::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(ballista)
}

/// A scheduler and `executors` executors (each running `concurrency` tasks at once) in this
/// process, on loopback ports the system picks; returns the scheduler's `df://` URL. They run
/// as long as the Tokio runtime does.
pub async fn standalone(
    base: SessionBuilder,
    executors: usize,
    concurrency: usize,
) -> Result<String> {
    let addr = ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
        state_builder(&base),
        config_producer(&base),
        codec(),
    )
    .await
    .map_err(ballista)?;
    let url = format!("http://localhost:{}", addr.port());
    let runtime: RuntimeProducer =
        Arc::new(|_: &SessionConfig| Ok(Arc::new(RuntimeEnvBuilder::new().build()?)));
    for _ in 0..executors {
        let mut tries = 0;
        let scheduler = loop {
            match SchedulerGrpcClient::connect(url.clone()).await {
                Ok(client) => break client,
                Err(e) if tries > 50 => {
                    return Err(DataFusionError::Execution(format!(
                        "standalone scheduler at {url}: {e}"
                    )));
                }
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        standalone_executor(&base, scheduler, concurrency, Arc::clone(&runtime)).await?;
    }
    Ok(format!("df://localhost:{}", addr.port()))
}

/// An executor in this process (as Ballista's standalone one, with vcfq's engine), on a
/// loopback port the system picks.
async fn standalone_executor(
    base: &SessionBuilder,
    scheduler: SchedulerGrpcClient<tonic::transport::Channel>,
    concurrency: usize,
    runtime: RuntimeProducer,
) -> Result<()> {
    let incoming = TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(|e| DataFusionError::Execution(format!("standalone executor: {e}")))?;
    let port = incoming
        .local_addr()
        .map_err(|e| DataFusionError::Execution(format!("standalone executor: {e}")))?
        .port();
    let registration = ExecutorRegistration {
        id: uuid::Uuid::new_v4().to_string(),
        host: Some("localhost".to_string()),
        port: u32::from(port),
        grpc_port: 0,
        specification: Some(
            ExecutorSpecification::default()
                .with_task_slots(concurrency as u32)
                .into(),
        ),
        os_info: Some(ExecutorOperatingSystemSpecification::default().into()),
    };
    let work_dir = tempfile_dir()?;
    let executor = Arc::new(Executor::new(
        registration,
        &work_dir,
        runtime,
        config_producer(base),
        Arc::new(function_registry(base)?),
        Arc::new(LoggingMetricsCollector::default()),
        concurrency,
        Arc::new(MarkedErrors::new()),
    ));
    let flight = FlightServiceServer::new(BallistaFlightService::new(work_dir));
    tokio::spawn(
        create_grpc_server(&GrpcServerConfig::default())
            .add_service(flight)
            .serve_with_incoming(incoming),
    );
    tokio::spawn(ballista_executor::execution_loop::poll_loop(
        scheduler,
        executor,
        codec(),
    ));
    Ok(())
}

/// A new directory for an in-process executor's shuffle files (under the system's temporary
/// directory; it stays until the system cleans it).
fn tempfile_dir() -> Result<String> {
    let dir = std::env::temp_dir().join(format!("vcfq-executor-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| DataFusionError::Execution(format!("{}: {e}", dir.display())))?;
    Ok(dir.to_string_lossy().into_owned())
}
