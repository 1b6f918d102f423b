//! Genomic regions (`chr1`, `chr1:1000`, `chr1:1,000-2,000`, `chr1:1000-`) and bcftools `-r`
//! overlap semantics.

use std::fmt;

/// A 1-based, inclusive interval on one contig.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region {
    /// Contig name, as written in the file.
    pub chrom: String,
    /// First position (1-based).
    pub start: i64,
    /// Last position, inclusive (`i64::MAX` for "to the end").
    pub end: i64,
}

impl Region {
    /// Parses `chrom[:start[-[end]]]`; thousands separators are allowed in numbers.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || format!("invalid region '{text}': expected chrom, chrom:start or chrom:start-end");
        if text.is_empty() {
            return Err(bad());
        }
        let (chrom, range) = match text.rsplit_once(':') {
            Some((c, r)) if !r.is_empty() && r.chars().all(|ch| ch.is_ascii_digit() || ch == ',' || ch == '-') => (c, Some(r)),
            _ => (text, None),
        };
        let num = |s: &str| -> Result<i64, String> { s.replace(',', "").parse::<i64>().map_err(|_| bad()) };
        let (start, end) = match range {
            None => (1, i64::MAX),
            Some(r) => match r.split_once('-') {
                None => {
                    let p = num(r)?;
                    (p, p)
                }
                Some((s, "")) => (num(s)?, i64::MAX),
                Some((s, e)) => (num(s)?, num(e)?),
            },
        };
        if chrom.is_empty() || start < 1 || end < start {
            return Err(bad());
        }
        Ok(Region { chrom: chrom.to_string(), start, end })
    }

    /// Whether a record on `chrom` spanning `pos..=end` overlaps this region.
    pub fn overlaps(&self, chrom: &[u8], pos: i64, end: i64) -> bool {
        chrom == self.chrom.as_bytes() && pos <= self.end && end >= self.start
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.end == i64::MAX {
            if self.start == 1 { write!(f, "{}", self.chrom) } else { write!(f, "{}:{}-", self.chrom, self.start) }
        } else {
            write!(f, "{}:{}-{}", self.chrom, self.start, self.end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(Region::parse("chr1").unwrap(), Region { chrom: "chr1".into(), start: 1, end: i64::MAX });
        assert_eq!(Region::parse("chr1:1,000-2,000").unwrap(), Region { chrom: "chr1".into(), start: 1000, end: 2000 });
        assert_eq!(Region::parse("chr1:5").unwrap().end, 5);
        assert_eq!(Region::parse("chr1:5-").unwrap().end, i64::MAX);
        assert_eq!(Region::parse("chrUn_KI270302v1:5-9").unwrap().chrom, "chrUn_KI270302v1");
        assert!(Region::parse("chr1:10-5").is_err());
        assert!(Region::parse("").is_err());
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
