//! A progress line on stderr for scans that take more than a second: records and bytes read,
//! rate, and the time left when the size of what is read is known. Read from the VCF scans'
//! metrics while the query runs; cleared when it ends.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::physical_plan::ExecutionPlan;

use crate::vcf::exec::VcfExec;

/// Scanned records and bytes, and the bytes to scan in all, summed over the VCF scans of a plan.
pub fn scanned(plan: &Arc<dyn ExecutionPlan>) -> (usize, usize, usize) {
    let (mut records, mut bytes, mut total) = (0, 0, 0);
    let _ = plan.apply(|node| {
        if node.is::<VcfExec>()
            && let Some(m) = node.metrics()
        {
            let get = |name| m.sum_by_name(name).map_or(0, |v| v.as_usize());
            records += get("records_scanned");
            bytes += get("bytes_scanned");
            total += get("bytes_total");
        }
        Ok(TreeNodeRecursion::Continue)
    });
    (records, bytes, total)
}

/// One line of progress text.
pub fn describe(records: usize, bytes: usize, total: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mb = |b: usize| b as f64 / (1 << 20) as f64;
    let mut text = format!("{records} records, {:.1} MB", mb(bytes));
    if total > 0 {
        let done = (bytes as f64 / total as f64).min(1.0);
        text.push_str(&format!(" of {:.1} MB ({:.0}%)", mb(total), done * 100.0));
        text.push_str(&format!(", {:.1} MB/s", mb(bytes) / secs));
        if done > 0.0 && done < 1.0 {
            text.push_str(&format!(", {:.0} s left", secs * (1.0 - done) / done));
        }
    } else {
        text.push_str(&format!(", {:.1} MB/s", mb(bytes) / secs));
    }
    text
}

/// The progress line of a running query; dropping it stops and clears the line.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    shown: Arc<AtomicBool>,
}

impl Progress {
    /// Starts watching `plan`; nothing is shown during the first second.
    pub fn start(plan: Arc<dyn ExecutionPlan>) -> Self {
        let shown = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&shown);
        let task = tokio::spawn(async move {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_secs(1)).await;
            loop {
                let (records, bytes, total) = scanned(&plan);
                if records > 0 || bytes > 0 {
                    let line = describe(records, bytes, total, start.elapsed());
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[K{line}");
                    let _ = err.flush();
                    flag.store(true, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Progress { task, shown }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        if self.shown.load(Ordering::Relaxed) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_rate_and_time_left() {
        let text = describe(1000, 50 << 20, 100 << 20, Duration::from_secs(5));
        assert_eq!(
            text,
            "1000 records, 50.0 MB of 100.0 MB (50%), 10.0 MB/s, 5 s left"
        );
        assert_eq!(
            describe(10, 1 << 20, 0, Duration::from_secs(1)),
            "10 records, 1.0 MB, 1.0 MB/s"
        );
    }
}
