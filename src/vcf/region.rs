//! Genomic regions (`chr1`, `chr1:1000`, `chr1:1,000-2,000`, `chr1:1000-`) and bcftools `-r`
//! overlap semantics.

use std::fmt;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, Operator};

/// A 1-based, inclusive interval on one contig.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region {
    /// Contig name, as written in the file.
    pub chrom: String,
    /// First position (1-based; 0 when the region includes records at POS=0, which the spec
    /// allows for telomeres, as a whole contig and SQL filters do).
    pub start: i64,
    /// Last position, inclusive (`i64::MAX` for "to the end").
    pub end: i64,
}

impl Region {
    /// Parses `chrom[:start[-[end]]]`; thousands separators are allowed in numbers. A contig
    /// alone is the whole contig, POS=0 records included.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad =
            || format!("invalid region '{text}': expected chrom, chrom:start or chrom:start-end");
        if text.is_empty() {
            return Err(bad());
        }
        let (chrom, range) = match text.rsplit_once(':') {
            Some((c, r))
                if !r.is_empty()
                    && r.chars()
                        .all(|ch| ch.is_ascii_digit() || ch == ',' || ch == '-') =>
            {
                (c, Some(r))
            }
            _ => (text, None),
        };
        let num = |s: &str| -> Result<i64, String> {
            s.replace(',', "").parse::<i64>().map_err(|_| bad())
        };
        let (start, end) = match range {
            None => (0, i64::MAX),
            Some(r) => match r.split_once('-') {
                None => {
                    let p = num(r)?;
                    (p, p)
                }
                Some((s, "")) => (num(s)?, i64::MAX),
                Some((s, e)) => (num(s)?, num(e)?),
            },
        };
        if chrom.is_empty() || (range.is_some() && start < 1) || end < start {
            return Err(bad());
        }
        Ok(Region {
            chrom: chrom.to_string(),
            start,
            end,
        })
    }

    /// Whether a record on `chrom` spanning `pos..=end` overlaps this region.
    pub fn overlaps(&self, chrom: &[u8], pos: i64, end: i64) -> bool {
        chrom == self.chrom.as_bytes() && pos <= self.end && end >= self.start
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.end == i64::MAX {
            if self.start <= 1 {
                write!(f, "{}", self.chrom)
            } else {
                write!(f, "{}:{}-", self.chrom, self.start)
            }
        } else {
            write!(f, "{}:{}-{}", self.chrom, self.start, self.end)
        }
    }
}

/// A union of intervals, each on one contig or (None) on any contig.
type Ranges = Vec<(Option<String>, i64, i64)>;

fn intersect(a: &Ranges, b: &Ranges) -> Ranges {
    let mut out = Vec::new();
    for (ca, la, ha) in a {
        for (cb, lb, hb) in b {
            let chrom = match (ca, cb) {
                (Some(x), Some(y)) if x != y => continue,
                (Some(x), _) | (None, Some(x)) => Some(x.clone()),
                (None, None) => None,
            };
            let (lo, hi) = (*la.max(lb), *ha.min(hb));
            if lo <= hi {
                out.push((chrom, lo, hi));
            }
        }
    }
    out
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column_name(&c.expr),
        _ => None,
    }
}

/// The value of a string literal (also one cast to, or written as, dictionary-encoded text).
pub fn string_literal(e: &Expr) -> Option<String> {
    fn text(v: &ScalarValue) -> Option<String> {
        match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => Some(s.clone()),
            ScalarValue::Dictionary(_, inner) => text(inner),
            _ => None,
        }
    }
    match e {
        Expr::Literal(v, _) => text(v),
        Expr::Cast(c) => string_literal(&c.expr),
        _ => None,
    }
}

fn int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) if v.data_type().is_integer() => v
            .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
            .ok()
            .and_then(|v| match v {
                ScalarValue::Int64(Some(i)) => Some(i),
                _ => None,
            }),
        Expr::Cast(c) => int(&c.expr),
        _ => None,
    }
}

/// The (chrom, pos) ranges an expression restricts rows to, when it is made of `chrom = 'x'`,
/// `chrom IN (…)`, comparisons and BETWEEN on `pos`, AND and OR; `None` otherwise. The result
/// may be wider than the expression (an AND with an unrelated condition keeps only its range
/// side), so it serves as an Inexact filter; it is never narrower: positions start at 0,
/// since the spec allows POS=0 for telomeres.
fn ranges_of(e: &Expr) -> Option<Ranges> {
    const ALL: i64 = i64::MAX;
    const FIRST: i64 = 0;
    match e {
        Expr::BinaryExpr(b) => match b.op {
            Operator::And => match (ranges_of(&b.left), ranges_of(&b.right)) {
                (Some(l), Some(r)) => Some(intersect(&l, &r)),
                (l, r) => l.or(r),
            },
            Operator::Or => {
                let mut l = ranges_of(&b.left)?;
                l.extend(ranges_of(&b.right)?);
                Some(l)
            }
            op => {
                let (col, value, op) = match (column_name(&b.left), column_name(&b.right)) {
                    (Some(c), None) => (c, &*b.right, op),
                    (None, Some(c)) => (c, &*b.left, op.swap()?),
                    _ => return None,
                };
                match (col, op) {
                    ("chrom", Operator::Eq) => {
                        Some(vec![(Some(string_literal(value)?), FIRST, ALL)])
                    }
                    ("pos", _) => {
                        let v = int(value)?;
                        let (lo, hi) = match op {
                            Operator::Eq => (v, v),
                            Operator::Gt => (v.saturating_add(1), ALL),
                            Operator::GtEq => (v, ALL),
                            Operator::Lt => (FIRST, v.saturating_sub(1)),
                            Operator::LtEq => (FIRST, v),
                            _ => return None,
                        };
                        Some(vec![(None, lo.max(FIRST), hi)])
                    }
                    _ => None,
                }
            }
        },
        Expr::Between(b) if !b.negated && column_name(&b.expr) == Some("pos") => {
            Some(vec![(None, int(&b.low)?.max(FIRST), int(&b.high)?)])
        }
        Expr::InList(l) if !l.negated && column_name(&l.expr) == Some("chrom") => l
            .list
            .iter()
            .map(|v| string_literal(v).map(|c| (Some(c), FIRST, ALL)))
            .collect(),
        _ => None,
    }
}

/// Whether a filter can narrow a scan to regions (it is then pushed into the scan as Inexact).
pub fn is_region_filter(e: &Expr) -> bool {
    ranges_of(e).is_some()
}

/// The regions that the conjunction of `filters` (and `base`, when given) confines rows to:
/// `Some` only when every range names its contig, since an index is queried per contig.
/// An empty list means no row can match.
pub fn regions_from_filters(filters: &[Expr], base: Option<&Region>) -> Option<Vec<Region>> {
    let mut acc: Option<Ranges> = base.map(|r| vec![(Some(r.chrom.clone()), r.start, r.end)]);
    for f in filters {
        if let Some(r) = ranges_of(f) {
            acc = Some(match acc {
                Some(a) => intersect(&a, &r),
                None => r,
            });
        }
    }
    let ranges = acc?;
    let mut regions = Vec::with_capacity(ranges.len());
    for (chrom, start, end) in ranges {
        regions.push(Region {
            chrom: chrom?,
            start,
            end,
        });
    }
    regions.sort_by(|a, b| (&a.chrom, a.start).cmp(&(&b.chrom, b.start)));
    // merge overlapping ranges on the same contig
    let mut merged: Vec<Region> = Vec::with_capacity(regions.len());
    for r in regions {
        match merged.last_mut() {
            Some(m) if m.chrom == r.chrom && r.start <= m.end.saturating_add(1) => {
                m.end = m.end.max(r.end)
            }
            _ => merged.push(r),
        }
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            Region::parse("chr1").unwrap(),
            Region {
                chrom: "chr1".into(),
                start: 0,
                end: i64::MAX
            }
        );
        assert_eq!(Region::parse("chr1").unwrap().to_string(), "chr1");
        assert!(Region::parse("chr1:0-5").is_err());
        assert_eq!(
            Region::parse("chr1:1,000-2,000").unwrap(),
            Region {
                chrom: "chr1".into(),
                start: 1000,
                end: 2000
            }
        );
        assert_eq!(Region::parse("chr1:5").unwrap().end, 5);
        assert_eq!(Region::parse("chr1:5-").unwrap().end, i64::MAX);
        assert_eq!(
            Region::parse("chrUn_KI270302v1:5-9").unwrap().chrom,
            "chrUn_KI270302v1"
        );
        assert!(Region::parse("chr1:10-5").is_err());
        assert!(Region::parse("").is_err());
    }

    #[test]
    fn regions_from_sql_filters() {
        use datafusion::prelude::{col, lit};
        let f = col("chrom")
            .eq(lit("chr2"))
            .and(col("pos").between(lit(10i64), lit(20i64)));
        assert_eq!(
            regions_from_filters(&[f], None),
            Some(vec![Region {
                chrom: "chr2".into(),
                start: 10,
                end: 20
            }])
        );
        let or = col("chrom")
            .eq(lit("1"))
            .and(col("pos").lt(lit(100i64)))
            .or(col("chrom").eq(lit("2")));
        let got = regions_from_filters(&[or, col("pos").gt_eq(lit(50i64))], None).unwrap();
        assert_eq!(
            got,
            vec![
                Region {
                    chrom: "1".into(),
                    start: 50,
                    end: 99
                },
                Region {
                    chrom: "2".into(),
                    start: 50,
                    end: i64::MAX
                }
            ]
        );
        // POS=0 (a telomere) is inside `pos = 0`, `pos < 10` and a whole contig
        assert_eq!(
            regions_from_filters(&[col("chrom").eq(lit("1")), col("pos").eq(lit(0i64))], None),
            Some(vec![Region {
                chrom: "1".into(),
                start: 0,
                end: 0
            }])
        );
        let below = regions_from_filters(
            &[col("chrom").eq(lit("1")), col("pos").lt(lit(10i64))],
            None,
        );
        assert_eq!(below.unwrap()[0].start, 0);
        // no contig: no regions; unrelated conditions: not region filters
        assert_eq!(
            regions_from_filters(&[col("pos").gt(lit(5i64))], None),
            None
        );
        assert!(!is_region_filter(&col("qual").gt(lit(5.0))));
        assert!(is_region_filter(
            &col("chrom").in_list(vec![lit("1"), lit("2")], false)
        ));
        // with a read_vcf region
        let base = Region::parse("1:1-1000").unwrap();
        assert_eq!(
            regions_from_filters(&[col("pos").gt(lit(900i64))], Some(&base)),
            Some(vec![Region {
                chrom: "1".into(),
                start: 901,
                end: 1000
            }])
        );
        assert_eq!(
            regions_from_filters(&[col("chrom").eq(lit("2"))], Some(&base)),
            Some(vec![])
        );
    }

    #[test]
    fn overlap_uses_record_end() {
        let r = Region::parse("1:100-200").unwrap();
        assert!(r.overlaps(b"1", 90, 100));
        assert!(!r.overlaps(b"1", 90, 99));
        assert!(r.overlaps(b"1", 200, 300));
        assert!(!r.overlaps(b"2", 150, 150));
    }
}
