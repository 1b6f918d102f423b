//! The same SQL on an Apache DataFusion Ballista cluster: `vcfq scheduler`, `vcfq executor`
//! and clients that send their queries there (`vcfq --cluster df://host:port`, `[cluster]` of
//! `vcfq serve`).
//!
//! A client plans a statement as it would locally (its tables are opened where it runs), then
//! [`planner::ClusterPlanner`] sends the logical plan to the scheduler, which plans it again
//! with a vcfq session (vcfq's rules, functions and tables), cuts it into stages and hands
//! their partitions to executors. Plans travel through [`codec`]: VCF tables and scans by
//! their files (shared filesystem paths), everything else as Ballista ships it. A VCF scan
//! that feeds an aggregation (or any scan, with `vcf.preserve_order = false`) is split into a
//! partition per byte range or index chunk, which the executors share out; a plain scan keeps
//! file order as it does locally (one task, several reader threads).
//!
//! Writes (`INSERT`, `COPY`) and queries over tables that cannot travel (topics, Lance
//! datasets, in-memory and system tables) run on the client, as they would without a cluster.

pub mod codec;
mod lance_wire;
pub mod planner;
pub mod process;
mod topic_wire;
mod wire;

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionConfig;
use futures::TryStreamExt;

pub use planner::ClusterPlanner;

/// The scheduler's port when a `df://` URL names none (Ballista's default).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// The gRPC URL (`http://host:port`) of the scheduler that `df://host[:port]` (or
/// `host:port`) names.
pub fn scheduler_url(text: &str) -> Result<String> {
    let (host, port) = scheduler_address(text)?;
    Ok(format!("http://{host}:{port}"))
}

/// The host and port of the scheduler that `df://host[:port]` (or `host:port`) names.
pub fn scheduler_address(text: &str) -> Result<(String, u16)> {
    let rest = text
        .strip_prefix("df://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text)
        .trim_end_matches('/');
    let bad = || {
        DataFusionError::Configuration(format!(
            "cluster '{text}': expected df://host:port (the address of `vcfq scheduler`)"
        ))
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(bad());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !rest.ends_with(']') => {
            (host, port.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (rest, DEFAULT_SCHEDULER_PORT),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// `stream` (or the error that stopped it from starting) with every error passed through `f`.
fn map_errors(
    stream: Result<SendableRecordBatchStream>,
    f: impl Fn(DataFusionError) -> DataFusionError + Clone + Send + 'static,
) -> Result<SendableRecordBatchStream> {
    let stream = stream.map_err(f.clone())?;
    let schema = stream.schema();
    Ok(Box::pin(RecordBatchStreamAdapter::new(
        schema,
        stream.map_err(f),
    )))
}

/// `builder`'s sessions with their queries sent to the Ballista scheduler at `url`
/// (`df://host:port`): queries over VCF/BCF files and DataFusion's file formats run on the
/// cluster's executors; writes and other tables stay here.
pub fn attach(builder: crate::SessionBuilder, url: &str) -> Result<crate::SessionBuilder> {
    let url = scheduler_url(url)?;
    let config = cluster_config(builder.config());
    let planner = ClusterPlanner::new(url, config.ballista_config());
    Ok(builder
        .with_config(config)
        .with_query_planner(Arc::new(planner)))
}

/// Partitions of an unordered VCF scan on a cluster, unless `vcf.scan_partitions` says
/// otherwise: in effect one per byte range or index chunk.
pub const CLUSTER_SCAN_PARTITIONS: usize = 4096;

/// A session configuration made ready for a cluster (on clients, the scheduler and the
/// executors alike): Ballista's settings, vcfq's codecs, and unordered VCF scans split into a
/// partition per unit (byte range or index chunk), which executors share out.
pub fn cluster_config(config: SessionConfig) -> SessionConfig {
    let mut config = config
        .upgrade_for_ballista()
        .with_ballista_logical_extension_codec(Arc::new(codec::VcfLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(codec::VcfPhysicalCodec::default()));
    if let Some(vcf) = config
        .options_mut()
        .extensions
        .get_mut::<crate::config::VcfConfig>()
        && vcf.scan_partitions == 0
    {
        vcf.scan_partitions = CLUSTER_SCAN_PARTITIONS;
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_urls() {
        assert_eq!(scheduler_url("df://h:7").unwrap(), "http://h:7");
        assert_eq!(scheduler_url("df://h").unwrap(), "http://h:50050");
        assert_eq!(
            scheduler_url("10.0.0.1:50050").unwrap(),
            "http://10.0.0.1:50050"
        );
        assert_eq!(scheduler_url("df://[::1]:9").unwrap(), "http://[::1]:9");
        for bad in [
            "",
            "df://",
            "df://h:x",
            "df://h:1/p",
            "df://u@h:1",
            "df://:1",
        ] {
            let e = scheduler_url(bad).unwrap_err().to_string();
            assert!(e.contains("expected df://host:port"), "{bad}: {e}");
        }
    }
}
