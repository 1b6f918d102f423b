//! The canonical variant key, `chrom:pos:ref:alt`: the message key of topic sinks and the
//! identity used to de-duplicate across platforms.
//!
//! Normalisation needs no reference genome: alleles are trimmed of the bases all of them share
//! at the end, then at the start (keeping at least one base each), which moves `pos` right by
//! the bases trimmed at the start. Full left-alignment inside repeats would need the reference
//! sequence and is not done; two spellings that differ only by such a shift keep different keys.
//! Contig names stay as written (`chr1` and `1` differ). Several ALT alleles are joined with `,`
//! in their written order; symbolic alleles (`<DEL>`), breakends and `*` are never trimmed.

/// The canonical key of a variant.
///
/// ```
/// use vcfq::vcf::key::variant_key;
/// assert_eq!(variant_key("chr1", 100, "CTT", &["CT"]), "chr1:100:CT:C");
/// assert_eq!(variant_key("chr1", 100, "A", &["G"]), "chr1:100:A:G");
/// assert_eq!(variant_key("2", 5, "GAC", &["GC", "GAAC"]), "2:5:GA:G,GAA");
/// ```
pub fn variant_key(chrom: &str, pos: i64, reference: &str, alts: &[&str]) -> String {
    let mut key = String::with_capacity(chrom.len() + reference.len() + 24);
    write_variant_key(&mut key, chrom, pos, reference, alts);
    key
}

/// [`variant_key`] appended to `out` (which a caller can reuse: nothing else is allocated).
pub fn write_variant_key<'a>(
    out: &mut String,
    chrom: &str,
    pos: i64,
    reference: &'a str,
    alts: &[&'a str],
) {
    let (prefix, suffix) = trim(reference, alts);
    let cut = |s: &'a str| -> &'a str { &s[prefix..s.len() - suffix] };
    out.push_str(chrom);
    out.push(':');
    out.push_str(itoa::Buffer::new().format(pos + prefix as i64));
    out.push(':');
    out.push_str(cut(reference));
    out.push(':');
    if alts.is_empty() {
        out.push('.');
    }
    for (i, alt) in alts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(cut(alt));
    }
}

fn is_plain(allele: &str) -> bool {
    !allele.is_empty()
        && allele
            .bytes()
            .all(|b| matches!(b.to_ascii_uppercase(), b'A' | b'C' | b'G' | b'T' | b'N'))
}

/// How many bases to trim from the start and from the end of every allele: the shared
/// suffix first, then the shared prefix, of plain alleles (keeping a base in each); `(0, 0)`
/// when any allele is not plain or there is no ALT.
fn trim(reference: &str, alts: &[&str]) -> (usize, usize) {
    if alts.is_empty() || !is_plain(reference) || !alts.iter().all(|a| is_plain(a)) {
        return (0, 0);
    }
    // plain alleles are ASCII: byte positions are char positions
    let base = |s: &str, i: usize| s.as_bytes()[i].to_ascii_uppercase();
    let shared = |at: &dyn Fn(&str) -> u8| {
        let b = at(reference);
        alts.iter().all(|a| at(a) == b)
    };
    let shortest = alts
        .iter()
        .map(|a| a.len())
        .fold(reference.len(), usize::min);
    let suffix = (0..shortest - 1)
        .take_while(|&k| shared(&|s: &str| base(s, s.len() - 1 - k)))
        .count();
    let prefix = (0..shortest - 1 - suffix)
        .take_while(|&k| shared(&|s: &str| base(s, k)))
        .count();
    (prefix, suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_appended_to_what_the_buffer_holds() {
        let mut out = String::from("x");
        write_variant_key(&mut out, "1", 100, "CAG", &["CTG"]);
        write_variant_key(&mut out, "2", -3, "A", &[]);
        assert_eq!(out, "x1:101:A:T2:-3:A:.");
    }

    #[test]
    fn snvs_and_simple_indels_are_unchanged() {
        assert_eq!(variant_key("chr1", 10, "A", &["T"]), "chr1:10:A:T");
        assert_eq!(variant_key("chr1", 10, "A", &["AT"]), "chr1:10:A:AT");
        assert_eq!(variant_key("chr1", 10, "AT", &["A"]), "chr1:10:AT:A");
    }

    #[test]
    fn shared_bases_are_trimmed_suffix_first() {
        // a padded SNV
        assert_eq!(variant_key("1", 100, "CAG", &["CTG"]), "1:101:A:T");
        // a deletion written with extra context on both sides
        assert_eq!(variant_key("1", 100, "GCAT", &["GT"]), "1:100:GCA:G");
        // case is kept as written but compared without it
        assert_eq!(variant_key("1", 1, "Aca", &["ACG"]), "1:3:a:G");
    }

    #[test]
    fn multi_allelic_trims_only_what_all_share() {
        assert_eq!(variant_key("1", 5, "GAC", &["GC", "GAAC"]), "1:5:GA:G,GAA");
        assert_eq!(
            variant_key("1", 5, "ACGT", &["ACGA", "TCGT"]),
            "1:5:ACGT:ACGA,TCGT"
        );
    }

    #[test]
    fn symbolic_missing_and_star_alleles_are_left_alone() {
        assert_eq!(variant_key("1", 5, "AT", &["<DEL>"]), "1:5:AT:<DEL>");
        assert_eq!(variant_key("1", 5, "AT", &["A", "*"]), "1:5:AT:A,*");
        assert_eq!(variant_key("1", 5, "AT", &[]), "1:5:AT:.");
        assert_eq!(
            variant_key("1", 5, "G", &["G]17:198982]"]),
            "1:5:G:G]17:198982]"
        );
    }
}
