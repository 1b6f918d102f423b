//! Session settings of vcfq, set with `SET vcf.… = …` (a DataFusion config extension).

use datafusion::common::config::ConfigExtension;
use datafusion::common::extensions_options;

extensions_options! {
    /// Settings for reading VCF/BCF files (`vcf.*`).
    pub struct VcfConfig {
        /// What to do with a record line that cannot be read: 'fail' (default) stops the query
        /// with an error naming the file and line; 'skip' drops the line, counts it and reports
        /// the count (and the first such line) on stderr when the file is done.
        pub on_error: String, default = "fail".to_string()
        /// Records read at planning time to find INFO/FORMAT fields that the header does not
        /// declare (they become text columns).
        pub infer_records: usize, default = 1000
        /// A BGZF or uncompressed file is split into byte ranges (read in parallel) of about
        /// this many bytes.
        pub min_split_bytes: usize, default = 1 << 20
        /// Keep records in file order (one output partition fed by parallel readers). With
        /// 'false', each of several partitions reads a share of the file, which lets
        /// aggregations run in parallel from the start but returns rows in no set order.
        pub preserve_order: bool, default = true
    }
}

impl ConfigExtension for VcfConfig {
    const PREFIX: &'static str = "vcf";
}

impl VcfConfig {
    /// Whether unreadable lines are skipped rather than fatal; an unknown value is an error.
    pub fn skip_errors(&self) -> datafusion::error::Result<bool> {
        match self.on_error.to_ascii_lowercase().as_str() {
            "fail" => Ok(false),
            "skip" => Ok(true),
            other => datafusion::common::plan_err!(
                "vcf.on_error must be 'fail' or 'skip', not '{other}'"
            ),
        }
    }
}
