//! One VCF record line, split into its fixed fields without copying or decoding them.
//!
//! Only CHROM, POS and the column count are checked here; everything else is sliced and
//! decoded later, and only if the query asks for it.

use memchr::memchr;

/// The fields of one record line, borrowed from the line buffer.
#[derive(Debug, Clone, Copy)]
pub struct RecordFields<'a> {
    /// CHROM.
    pub chrom: &'a [u8],
    /// POS, parsed (1-based).
    pub pos: i64,
    /// ID.
    pub id: &'a [u8],
    /// REF.
    pub reference: &'a [u8],
    /// ALT.
    pub alt: &'a [u8],
    /// QUAL.
    pub qual: &'a [u8],
    /// FILTER.
    pub filter: &'a [u8],
    /// INFO.
    pub info: &'a [u8],
    /// FORMAT, when the line has a ninth column.
    pub format: Option<&'a [u8]>,
    /// Everything after FORMAT: the sample columns, still tab-separated (empty when none).
    pub samples: &'a [u8],
}

/// Splits a record line. Fails (with a message for the caller to place) when the line has
/// fewer than 8 columns or POS is not a non-negative integer.
pub fn split_record(line: &[u8]) -> Result<RecordFields<'_>, String> {
    let mut rest = line;
    let mut fixed: [&[u8]; 8] = [&[]; 8];
    let mut has_format = false;
    for (i, slot) in fixed.iter_mut().enumerate() {
        match memchr(b'\t', rest) {
            Some(t) => {
                *slot = &rest[..t];
                rest = &rest[t + 1..];
                has_format = i == 7;
            }
            None if i == 7 => {
                *slot = rest;
                rest = &[];
            }
            None if i == 0 => return Err("not a VCF record: no tab-separated columns".to_string()),
            None => {
                return Err(format!(
                    "record has {} columns, a VCF record needs at least 8",
                    i + 1
                ));
            }
        }
    }
    let (format, samples) = if !has_format {
        (None, &[][..])
    } else {
        match memchr(b'\t', rest) {
            Some(t) => (Some(&rest[..t]), &rest[t + 1..]),
            None => (Some(rest), &[][..]),
        }
    };
    let pos = parse_pos(fixed[1]).ok_or_else(|| {
        format!(
            "POS '{}' is not a position",
            String::from_utf8_lossy(fixed[1])
        )
    })?;
    Ok(RecordFields {
        chrom: fixed[0],
        pos,
        id: fixed[2],
        reference: fixed[3],
        alt: fixed[4],
        qual: fixed[5],
        filter: fixed[6],
        info: fixed[7],
        format,
        samples,
    })
}

fn parse_pos(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(b - b'0');
    }
    Some(v)
}

/// The END of a record, for region overlap: INFO/END when present, else POS + len(REF) − 1.
pub fn record_end(fields: &RecordFields<'_>) -> i64 {
    let ref_len = fields.reference.len().max(1) as i64;
    let mut end = fields.pos + ref_len - 1;
    for item in fields.info.split(|&b| b == b';') {
        if let Some(v) = item.strip_prefix(b"END=")
            && let Some(e) = parse_pos(v)
        {
            end = end.max(e);
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sites_and_samples() {
        let r =
            split_record(b"chr1\t100\trs1\tA\tG,T\t29.5\tPASS\tDP=3\tGT:DP\t0/1:3\t./.").unwrap();
        assert_eq!(r.chrom, b"chr1");
        assert_eq!(r.pos, 100);
        assert_eq!(r.alt, b"G,T");
        assert_eq!(r.format, Some(&b"GT:DP"[..]));
        assert_eq!(r.samples, b"0/1:3\t./.");
        let sites = split_record(b"1\t5\t.\tA\t.\t.\t.\t.").unwrap();
        assert_eq!(sites.format, None);
        assert!(sites.samples.is_empty());
    }

    #[test]
    fn rejects_short_lines_and_bad_pos() {
        assert!(split_record(b"chr1 100").unwrap_err().contains("no tab"));
        assert!(
            split_record(b"chr1\t100\t.\tA")
                .unwrap_err()
                .contains("4 columns")
        );
        assert!(
            split_record(b"chr1\tx\t.\tA\tC\t.\t.\t.")
                .unwrap_err()
                .contains("POS 'x'")
        );
    }

    #[test]
    fn end_from_info_or_ref() {
        let r = split_record(b"1\t10\t.\tACGT\t<DEL>\t.\t.\tSVTYPE=DEL;END=500").unwrap();
        assert_eq!(record_end(&r), 500);
        let r = split_record(b"1\t10\t.\tACGT\tA\t.\t.\tXEND=5").unwrap();
        assert_eq!(record_end(&r), 13);
    }
}
