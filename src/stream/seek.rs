//! What a topic scan's filters say about where to read: `_partition`, `_offset` and
//! `_timestamp` comparisons become partitions to read and start/end positions ([`Seek`]).
//! The filters stay above the scan (they are inexact: a position narrows what is read, the
//! filter still decides each row), so a bound that cannot be used only costs reading more.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use super::platform::PartitionRange;

/// What filters say about where to read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seek {
    /// Only these partitions.
    pub partitions: Option<Vec<i32>>,
    /// First offset (inclusive).
    pub from_offset: Option<i64>,
    /// End offset (exclusive).
    pub to_offset: Option<i64>,
    /// First timestamp (ms, inclusive).
    pub from_timestamp: Option<i64>,
}

impl Seek {
    /// What to read of `partition`: from `start` (the table's start position, after
    /// `from_timestamp`, which only the platform can turn into an offset) moved to
    /// `from_offset`, up to `high` (the end when planned) or without end when following,
    /// unless `to_offset` bounds it.
    pub fn range(&self, partition: i32, start: i64, high: i64, follow: bool) -> PartitionRange {
        let start = self.from_offset.map_or(start, |from| start.max(from));
        let end = match (follow, self.to_offset) {
            (true, to) => to,
            (false, Some(to)) => Some(to.min(high)),
            (false, None) => Some(high),
        };
        PartitionRange {
            partition,
            start,
            end,
        }
    }
}

fn literal_i64(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::Int8(Some(x)) => Some(i64::from(*x)),
            ScalarValue::Int16(Some(x)) => Some(i64::from(*x)),
            ScalarValue::Int32(Some(x)) => Some(i64::from(*x)),
            ScalarValue::Int64(Some(x)) => Some(*x),
            ScalarValue::UInt8(Some(x)) => Some(i64::from(*x)),
            ScalarValue::UInt16(Some(x)) => Some(i64::from(*x)),
            ScalarValue::UInt32(Some(x)) => Some(i64::from(*x)),
            ScalarValue::UInt64(Some(x)) => i64::try_from(*x).ok(),
            ScalarValue::TimestampSecond(Some(x), _) => x.checked_mul(1000),
            ScalarValue::TimestampMillisecond(Some(x), _) => Some(*x),
            ScalarValue::TimestampMicrosecond(Some(x), _) => Some(x / 1000),
            ScalarValue::TimestampNanosecond(Some(x), _) => Some(x / 1_000_000),
            _ => None,
        },
        Expr::Cast(c) => literal_i64(&c.expr),
        Expr::TryCast(c) => literal_i64(&c.expr),
        _ => None,
    }
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column_name(&c.expr),
        _ => None,
    }
}

/// Narrows `seek` by one filter; whether the filter was understood.
pub fn apply_filter(seek: &mut Seek, filter: &Expr) -> bool {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (name, value, op) = match (column_name(left), literal_i64(right)) {
                (Some(n), Some(v)) => (n, v, *op),
                _ => match (column_name(right), literal_i64(left), op.swap()) {
                    (Some(n), Some(v), Some(op)) => (n, v, op),
                    _ => return false,
                },
            };
            match (name, op) {
                ("_partition", Operator::Eq) => {
                    let p = i32::try_from(value).unwrap_or(-1);
                    seek.partitions = Some(match seek.partitions.take() {
                        Some(ps) => ps.into_iter().filter(|x| *x == p).collect(),
                        None => vec![p],
                    });
                    true
                }
                ("_offset", Operator::Eq) => {
                    lower(&mut seek.from_offset, value);
                    upper(&mut seek.to_offset, value.saturating_add(1));
                    true
                }
                ("_offset", Operator::Gt) => {
                    lower(&mut seek.from_offset, value.saturating_add(1));
                    true
                }
                ("_offset", Operator::GtEq) => {
                    lower(&mut seek.from_offset, value);
                    true
                }
                ("_offset", Operator::Lt) => {
                    upper(&mut seek.to_offset, value);
                    true
                }
                ("_offset", Operator::LtEq) => {
                    upper(&mut seek.to_offset, value.saturating_add(1));
                    true
                }
                ("_timestamp", Operator::Gt) => {
                    lower(&mut seek.from_timestamp, value.saturating_add(1));
                    true
                }
                ("_timestamp", Operator::GtEq | Operator::Eq) => {
                    lower(&mut seek.from_timestamp, value);
                    true
                }
                _ => false,
            }
        }
        Expr::Between(b) if !b.negated => match (
            column_name(&b.expr),
            literal_i64(&b.low),
            literal_i64(&b.high),
        ) {
            (Some("_offset"), Some(lo), Some(hi)) => {
                lower(&mut seek.from_offset, lo);
                upper(&mut seek.to_offset, hi.saturating_add(1));
                true
            }
            (Some("_timestamp"), Some(lo), Some(_)) => {
                lower(&mut seek.from_timestamp, lo);
                true
            }
            _ => false,
        },
        Expr::InList(list) if !list.negated && column_name(&list.expr) == Some("_partition") => {
            let values: Option<Vec<i32>> = list
                .list
                .iter()
                .map(|e| literal_i64(e).and_then(|v| i32::try_from(v).ok()))
                .collect();
            let Some(values) = values else {
                return false;
            };
            seek.partitions = Some(match seek.partitions.take() {
                Some(ps) => ps.into_iter().filter(|x| values.contains(x)).collect(),
                None => values,
            });
            true
        }
        _ => false,
    }
}

fn lower(bound: &mut Option<i64>, value: i64) {
    *bound = Some(bound.map_or(value, |b| b.max(value)));
}

fn upper(bound: &mut Option<i64>, value: i64) {
    *bound = Some(bound.map_or(value, |b| b.min(value)));
}

/// The seek positions the filters give.
pub fn seek_from_filters(filters: &[Expr]) -> Seek {
    let mut seek = Seek::default();
    for f in filters {
        apply_filter(&mut seek, f);
    }
    seek
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn filters_on_partition_offset_and_timestamp_become_seek_positions() {
        let seek = seek_from_filters(&[
            col("_partition").in_list(vec![lit(1), lit(2)], false),
            col("_partition").eq(lit(2)),
            col("_offset").gt_eq(lit(10i64)),
            col("_offset").lt(lit(50i64)),
            lit(20i64).lt(col("_offset")),
            col("chrom").eq(lit("chr1")),
        ]);
        assert_eq!(
            seek,
            Seek {
                partitions: Some(vec![2]),
                from_offset: Some(21),
                to_offset: Some(50),
                from_timestamp: None,
            }
        );
        let between = seek_from_filters(&[col("_offset").between(lit(5i64), lit(9i64))]);
        assert_eq!(
            (between.from_offset, between.to_offset),
            (Some(5), Some(10))
        );
        assert!(!apply_filter(
            &mut Seek::default(),
            &col("pos").gt(lit(5i64))
        ));
    }

    #[test]
    fn ranges_end_at_the_planned_end_unless_following() {
        let seek = Seek {
            from_offset: Some(5),
            to_offset: Some(50),
            ..Seek::default()
        };
        let r = seek.range(1, 2, 40, false);
        assert_eq!((r.partition, r.start, r.end), (1, 5, Some(40)));
        assert_eq!(seek.range(1, 9, 40, true).end, Some(50));
        assert_eq!(Seek::default().range(0, 0, 7, true).end, None);
        assert_eq!(Seek::default().range(0, 3, 7, false).end, Some(7));
    }
}
