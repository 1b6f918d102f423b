//! Session settings of vcfq, set with `SET vcf.… = …` (a DataFusion config extension). A value
//! that a setting cannot take is rejected by the `SET` itself, not by a later query.

use std::fmt;

use datafusion::common::config::{
    ConfigEntry, ConfigExtension, ConfigField, ExtensionOptions, Visit,
};
use datafusion::common::extensions_options;
use datafusion::error::{DataFusionError, Result};

/// A config extension whose entries carry its prefix (`vcf.on_error`, not `on_error` as
/// DataFusion's `extensions_options!` lists them): `SHOW vcf.on_error` and
/// `information_schema.df_settings` find them, and a cluster's scheduler and executors, which
/// get a session's settings as the key/value pairs of its entries, can set them.
macro_rules! prefixed_extension {
    ($(#[$meta:meta])* $name:ident($fields:ident), $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        pub struct $name($fields);

        impl std::ops::Deref for $name {
            type Target = $fields;
            fn deref(&self) -> &$fields {
                &self.0
            }
        }

        impl std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $fields {
                &mut self.0
            }
        }

        impl ConfigExtension for $name {
            const PREFIX: &'static str = $prefix;
        }

        impl ExtensionOptions for $name {
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
            fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
                self
            }
            fn cloned(&self) -> Box<dyn ExtensionOptions> {
                Box::new(self.clone())
            }
            fn set(&mut self, key: &str, value: &str) -> Result<()> {
                ExtensionOptions::set(&mut self.0, key, value)
            }
            fn entries(&self) -> Vec<ConfigEntry> {
                let mut entries = ExtensionOptions::entries(&self.0);
                for e in &mut entries {
                    e.key = format!("{}.{}", $prefix, e.key);
                }
                entries
            }
        }
    };
}

prefixed_extension!(
    /// Settings for reading VCF/BCF files (`vcf.*`). Each acts on every way of reading a file:
    /// a path in `FROM`, `CREATE EXTERNAL TABLE … STORED AS VCF`, `read_vcf` and
    /// `vcf_genotypes`.
    VcfConfig(VcfSettings),
    "vcf"
);

prefixed_extension!(
    /// Settings for vector search over Lance tables (`vector.*`).
    VectorConfig(VectorSettings),
    "vector"
);

extensions_options! {
    /// The fields of [`VcfConfig`].
    pub struct VcfSettings {
        /// What to do with a record line that cannot be read: 'fail' (default) stops the query
        /// with an error naming the file and line; 'skip' drops the line, counts it and reports
        /// the count (and the first such line) on stderr when the file is done.
        pub on_error: OnError, default = OnError::Fail
        /// Records read at planning time to find INFO/FORMAT fields that the header does not
        /// declare (they become text columns).
        pub infer_records: usize, default = 1000
        /// A BGZF or uncompressed file is split into byte ranges (read in parallel) of about
        /// this many bytes (at least 1).
        pub min_split_bytes: SplitBytes, default = SplitBytes(1 << 20)
        /// Keep records in file order (one output partition fed by parallel readers). With
        /// 'false', each of several partitions reads a share of the file, which lets
        /// aggregations run in parallel from the start but returns rows in no set order.
        pub preserve_order: bool, default = true
        /// At most this many partitions for a scan that need not keep file order (one per byte
        /// range or index chunk when there are fewer); 0 means
        /// `datafusion.execution.target_partitions`. Sessions on a cluster (`--cluster`) set
        /// it to 4096 unless it is set: a task per unit, shared out among the executors.
        pub scan_partitions: usize, default = 0
    }
}

impl VcfSettings {
    /// Whether unreadable lines are skipped rather than fatal.
    pub fn skip_errors(&self) -> bool {
        self.on_error == OnError::Skip
    }
}

extensions_options! {
    /// The fields of [`VectorConfig`].
    pub struct VectorSettings {
        /// Answer `vector_search(…)` and `ORDER BY <distance>(col, <vector>) LIMIT k` through
        /// a vector index where the column has one (approximate); with 'false', every such
        /// query is an exact scan, for comparing a query with its exact answer.
        pub use_index: bool, default = true
        /// IVF partitions probed per search (0: Lance's default, 20 or more).
        pub nprobes: usize, default = 0
        /// Candidates re-ranked by their exact distance, as a multiple of k (0: none).
        pub refine_factor: u32, default = 0
    }
}

/// `vcf.on_error`: what an unreadable record line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// The query fails, naming the file and line.
    #[default]
    Fail,
    /// The line is skipped and counted.
    Skip,
}

impl fmt::Display for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnError::Fail => "fail",
            OnError::Skip => "skip",
        })
    }
}

impl std::str::FromStr for OnError {
    type Err = DataFusionError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fail" => Ok(OnError::Fail),
            "skip" => Ok(OnError::Skip),
            other => Err(DataFusionError::Configuration(format!(
                "vcf.on_error must be 'fail' or 'skip', not '{other}'"
            ))),
        }
    }
}

impl ConfigField for OnError {
    fn visit<V: Visit>(&self, v: &mut V, key: &str, description: &'static str) {
        v.some(key, self, description)
    }

    fn set(&mut self, _key: &str, value: &str) -> Result<()> {
        *self = value.parse()?;
        Ok(())
    }

    fn reset(&mut self, _key: &str) -> Result<()> {
        *self = OnError::default();
        Ok(())
    }
}

/// `vcf.min_split_bytes`: a whole number of bytes, at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitBytes(pub usize);

impl fmt::Display for SplitBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ConfigField for SplitBytes {
    fn visit<V: Visit>(&self, v: &mut V, key: &str, description: &'static str) {
        v.some(key, self, description)
    }

    fn set(&mut self, _key: &str, value: &str) -> Result<()> {
        match value.trim().parse::<usize>() {
            Ok(n) if n >= 1 => {
                self.0 = n;
                Ok(())
            }
            _ => Err(DataFusionError::Configuration(format!(
                "vcf.min_split_bytes must be a whole number of bytes, at least 1, not '{value}'"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::config::ExtensionOptions;

    #[test]
    fn bad_values_are_rejected_when_set() {
        let mut c = VcfConfig::default();
        ExtensionOptions::set(&mut c, "on_error", "SKIP").unwrap();
        assert!(c.skip_errors());
        let e = ExtensionOptions::set(&mut c, "on_error", "ignore")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("vcf.on_error must be 'fail' or 'skip', not 'ignore'"),
            "{e}"
        );
        assert!(
            c.skip_errors(),
            "a rejected value leaves the setting as it was"
        );
        assert!(ExtensionOptions::set(&mut c, "min_split_bytes", "0").is_err());
        assert!(ExtensionOptions::set(&mut c, "min_split_bytes", "-5").is_err());
        ExtensionOptions::set(&mut c, "min_split_bytes", "4096").unwrap();
        assert_eq!(c.min_split_bytes, SplitBytes(4096));
        assert!(ExtensionOptions::set(&mut c, "infer_records", "many").is_err());
        assert!(ExtensionOptions::set(&mut c, "preserve_order", "maybe").is_err());
        assert!(ExtensionOptions::set(&mut c, "no_such_setting", "1").is_err());
    }
}
