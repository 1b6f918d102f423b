//! Where a client's statement runs: on the cluster (queries over tables that can travel) or
//! here (writes, and queries over tables that cannot).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use ballista_core::config::BallistaConfig;
use ballista_core::planner::BallistaQueryPlanner;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, PlanProperties};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_proto::protobuf::LogicalPlanNode;

use super::codec::VcfLogicalCodec;
use crate::lance::LanceTable;
use crate::stream::table::TopicTable;
use crate::vcf::VcfTable;

/// Plans statements for a session attached to a cluster.
pub struct ClusterPlanner {
    remote: BallistaQueryPlanner<LogicalPlanNode>,
    local: DefaultPhysicalPlanner,
    /// The scheduler, as users name it (`df://host:port`).
    scheduler: String,
}

impl ClusterPlanner {
    /// A planner sending queries to the scheduler at `scheduler_url` (`http://host:port`).
    pub fn new(scheduler_url: String, config: BallistaConfig) -> Self {
        let scheduler = scheduler_url.replacen("http://", "df://", 1);
        ClusterPlanner {
            remote: BallistaQueryPlanner::with_extension(
                scheduler_url,
                config,
                Arc::new(VcfLogicalCodec::default()),
            ),
            local: DefaultPhysicalPlanner::default(),
            scheduler,
        }
    }
}

impl std::fmt::Debug for ClusterPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPlanner")
            .field("remote", &self.remote)
            .finish()
    }
}

/// Whether the cluster can run `plan`: a query (no writes, no DDL) reading at least one table,
/// every one of them a VCF/BCF table, a Lance dataset, a topic read as a snapshot
/// ([`super::topic_wire::travels`]) or one of DataFusion's file formats.
pub fn runs_on_cluster(plan: &LogicalPlan) -> bool {
    let mut tables = 0;
    let mut shippable = true;
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Extension(_) => shippable = false,
            LogicalPlan::TableScan(scan) => {
                tables += 1;
                let travels = source_as_provider(&scan.source).is_ok_and(|p| {
                    let any: &dyn std::any::Any = p.as_ref();
                    any.is::<VcfTable>()
                        || any.is::<LanceTable>()
                        || any.is::<ListingTable>()
                        || any
                            .downcast_ref::<TopicTable>()
                            .is_some_and(super::topic_wire::travels)
                });
                shippable &= travels;
            }
            _ => {}
        }
        Ok(if shippable {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    shippable && tables > 0
}

#[async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &SessionState,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if runs_on_cluster(logical_plan) {
            let job = self
                .remote
                .create_physical_plan(logical_plan, session_state)
                .await?;
            if job.name() == "DistributedQueryExec" {
                Ok(Arc::new(ClusterExec {
                    job,
                    scheduler: self.scheduler.clone(),
                }))
            } else {
                Ok(job)
            }
        } else {
            self.local
                .create_physical_plan(logical_plan, session_state)
                .await
        }
    }
}

/// A query sent to the cluster (Ballista's `DistributedQueryExec`), with a scheduler that
/// cannot be reached reported as such, in one line naming it.
#[derive(Debug)]
pub struct ClusterExec {
    job: Arc<dyn ExecutionPlan>,
    scheduler: String,
}

impl ClusterExec {
    /// The error, or what it says about the scheduler when it is a failure to reach it.
    fn reachable(scheduler: &str, e: DataFusionError) -> DataFusionError {
        let text = e.to_string();
        if !text.contains("ConnectError") {
            return e;
        }
        // tonic's report: ConnectError("tcp connect error", addr, Os { …, message: "…" })
        let reason = text
            .split_once("message: \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or("cannot connect", |(m, _)| m);
        DataFusionError::IoError(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            format!("cluster scheduler {scheduler} cannot be reached: {reason}"),
        ))
    }
}

impl DisplayAs for ClusterExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ClusterExec: scheduler={}, ", self.scheduler)?;
        match t {
            DisplayFormatType::TreeRender => Ok(()),
            _ => self.job.fmt_as(t, f),
        }
    }
}

impl ExecutionPlan for ClusterExec {
    fn name(&self) -> &str {
        "ClusterExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.job.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let scheduler = self.scheduler.clone();
        super::map_errors(self.job.execute(partition, context), move |e| {
            Self::reachable(&scheduler, e)
        })
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.job.metrics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_scheduler_is_named() {
        let tonic = DataFusionError::Execution(
            "tonic::transport::Error(Transport, ConnectError(ConnectError(\"tcp connect error\", \
             127.0.0.1:1, Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" })))"
                .into(),
        );
        let e = ClusterExec::reachable("df://127.0.0.1:1", tonic);
        assert_eq!(
            e.to_string(),
            "IO error: cluster scheduler df://127.0.0.1:1 cannot be reached: Connection refused"
        );
        let other = DataFusionError::Execution("Job x failed: boom".into());
        assert_eq!(
            ClusterExec::reachable("df://h:1", other).to_string(),
            "Execution error: Job x failed: boom"
        );
    }
}
