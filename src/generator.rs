//! A generator of realistic VCFs (`vcfq gen`), so that examples, tests and benchmarks need no
//! third-party data.
//!
//! Records are spread over chr1–chr22 and chrX in proportion to their GRCh38 lengths; most are
//! SNPs, some indels and multi-allelic sites; allele frequencies are skewed towards rare
//! variants; genotypes follow those frequencies with some missing and phased calls. The output
//! is deterministic for a given seed. Names ending in `.gz`/`.bgz` are written as BGZF.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Number of records.
    pub records: u64,
    /// Number of samples (0 for a sites-only file).
    pub samples: usize,
    /// Seed of the pseudo-random generator.
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            records: 10_000,
            samples: 0,
            seed: 42,
        }
    }
}

const CONTIGS: [(&str, u64); 23] = [
    ("chr1", 248_956_422),
    ("chr2", 242_193_529),
    ("chr3", 198_295_559),
    ("chr4", 190_214_555),
    ("chr5", 181_538_259),
    ("chr6", 170_805_979),
    ("chr7", 159_345_973),
    ("chr8", 145_138_636),
    ("chr9", 138_394_717),
    ("chr10", 133_797_422),
    ("chr11", 135_086_622),
    ("chr12", 133_275_309),
    ("chr13", 114_364_328),
    ("chr14", 107_043_718),
    ("chr15", 101_991_189),
    ("chr16", 90_338_345),
    ("chr17", 83_257_441),
    ("chr18", 80_373_285),
    ("chr19", 58_617_616),
    ("chr20", 64_444_167),
    ("chr21", 46_709_983),
    ("chr22", 50_818_468),
    ("chrX", 156_040_895),
];

/// SplitMix64: small, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn base(&mut self) -> u8 {
        b"ACGT"[self.below(4) as usize]
    }
}

/// Writes the header of a generated file.
fn write_header(out: &mut impl Write, samples: usize) -> io::Result<()> {
    writeln!(out, "##fileformat=VCFv4.3")?;
    writeln!(out, "##source=vcfq gen")?;
    writeln!(out, "##FILTER=<ID=PASS,Description=\"All filters passed\">")?;
    writeln!(out, "##FILTER=<ID=q10,Description=\"Quality below 10\">")?;
    writeln!(
        out,
        "##FILTER=<ID=LowDP,Description=\"Total depth below 10\">"
    )?;
    for (name, len) in CONTIGS {
        writeln!(out, "##contig=<ID={name},length={len},assembly=GRCh38>")?;
    }
    writeln!(
        out,
        "##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Total read depth\">"
    )?;
    writeln!(
        out,
        "##INFO=<ID=AF,Number=A,Type=Float,Description=\"Allele frequency, for each ALT allele\">"
    )?;
    writeln!(
        out,
        "##INFO=<ID=AC,Number=A,Type=Integer,Description=\"Allele count in genotypes, for each ALT allele\">"
    )?;
    writeln!(
        out,
        "##INFO=<ID=AN,Number=1,Type=Integer,Description=\"Total number of alleles in called genotypes\">"
    )?;
    writeln!(
        out,
        "##INFO=<ID=MQ,Number=1,Type=Float,Description=\"RMS mapping quality\">"
    )?;
    writeln!(
        out,
        "##INFO=<ID=DB,Number=0,Type=Flag,Description=\"dbSNP membership\">"
    )?;
    writeln!(
        out,
        "##INFO=<ID=TYPE,Number=A,Type=String,Description=\"Variant type: snp, ins or del\">"
    )?;
    if samples > 0 {
        writeln!(
            out,
            "##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">"
        )?;
        writeln!(
            out,
            "##FORMAT=<ID=GQ,Number=1,Type=Integer,Description=\"Genotype quality\">"
        )?;
        writeln!(
            out,
            "##FORMAT=<ID=DP,Number=1,Type=Integer,Description=\"Read depth\">"
        )?;
        writeln!(
            out,
            "##FORMAT=<ID=AD,Number=R,Type=Integer,Description=\"Allelic depths\">"
        )?;
    }
    write!(out, "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")?;
    if samples > 0 {
        write!(out, "\tFORMAT")?;
        for i in 0..samples {
            write!(out, "\tS{:05}", i + 1)?;
        }
    }
    writeln!(out)
}

/// Writes a generated VCF to `out`.
pub fn generate(out: &mut impl Write, options: &GenOptions) -> io::Result<()> {
    let mut rng = Rng(options.seed ^ 0x5EED);
    write_header(out, options.samples)?;
    let total_len: u64 = CONTIGS.iter().map(|(_, l)| l).sum();
    let mut line = Vec::with_capacity(256 + options.samples * 16);
    let mut written = 0u64;
    let mut rsid = 1000u64;
    for (ci, (chrom, len)) in CONTIGS.iter().enumerate() {
        let share = if ci + 1 == CONTIGS.len() {
            options.records - written
        } else {
            (options.records as u128 * *len as u128 / total_len as u128) as u64
        };
        let step = (len / share.max(1)).max(2);
        let mut pos = 1 + rng.below(step);
        for _ in 0..share {
            line.clear();
            write_record(&mut line, &mut rng, chrom, pos, &mut rsid, options.samples)?;
            out.write_all(&line)?;
            pos += 1 + rng.below(2 * step - 1);
        }
        written += share;
    }
    Ok(())
}

fn write_record(
    line: &mut Vec<u8>,
    rng: &mut Rng,
    chrom: &str,
    pos: u64,
    rsid: &mut u64,
    samples: usize,
) -> io::Result<()> {
    let reference = rng.base();
    let kind = rng.below(100);
    let mut alts: Vec<Vec<u8>> = Vec::new();
    let mut types = Vec::new();
    let mut ref_allele = vec![reference];
    if kind < 85 {
        let mut alt = rng.base();
        while alt == reference {
            alt = rng.base();
        }
        alts.push(vec![alt]);
        types.push("snp");
    } else if kind < 95 {
        if rng.below(2) == 0 {
            let mut ins = vec![reference];
            for _ in 0..1 + rng.below(5) {
                ins.push(rng.base());
            }
            alts.push(ins);
            types.push("ins");
        } else {
            for _ in 0..1 + rng.below(5) {
                ref_allele.push(rng.base());
            }
            alts.push(vec![reference]);
            types.push("del");
        }
    } else {
        for b in b"ACGT" {
            if *b != reference && alts.len() < 2 {
                alts.push(vec![*b]);
                types.push("snp");
            }
        }
    }
    // skewed towards rare variants; the second ALT rarer still
    let afs: Vec<f64> = (0..alts.len())
        .map(|i| (rng.unit().powi(3) * 0.5 / (i + 1) as f64).max(0.0005))
        .collect();
    let id = if rng.below(10) < 4 {
        *rsid += 1 + rng.below(50);
        format!("rs{rsid}")
    } else {
        ".".to_string()
    };
    let qual = if rng.below(10) == 0 {
        ".".to_string()
    } else {
        format!("{:.1}", 5.0 + rng.unit() * 995.0)
    };
    let filter = match rng.below(100) {
        0..=84 => "PASS",
        85..=94 => "q10",
        95..=97 => "LowDP",
        _ => ".",
    };
    let dp = 10 + rng.below(90 + samples as u64 * 20);
    let mq = 20.0 + rng.unit() * 40.0;

    // genotypes first, so AC/AN agree with them
    let mut gts = Vec::with_capacity(samples);
    let mut ac = vec![0u32; alts.len()];
    let mut an = 0u32;
    let phased = rng.below(10) < 3;
    for _ in 0..samples {
        if rng.below(50) == 0 {
            gts.push(None);
            continue;
        }
        let mut pick = || {
            let u = rng.unit();
            let mut acc = 0.0;
            for (i, af) in afs.iter().enumerate() {
                acc += af;
                if u < acc {
                    return i as u32 + 1;
                }
            }
            0
        };
        let (a, b) = (pick(), pick());
        for x in [a, b] {
            an += 1;
            if x > 0 {
                ac[x as usize - 1] += 1;
            }
        }
        gts.push(Some((a, b)));
    }

    write!(line, "{chrom}\t{pos}\t{id}\t")?;
    line.extend_from_slice(&ref_allele);
    line.push(b'\t');
    for (i, a) in alts.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        line.extend_from_slice(a);
    }
    write!(line, "\t{qual}\t{filter}\tDP={dp};AF=")?;
    for (i, af) in afs.iter().enumerate() {
        write!(line, "{}{:.4}", if i > 0 { "," } else { "" }, af)?;
    }
    if samples > 0 {
        line.extend_from_slice(b";AC=");
        for (i, c) in ac.iter().enumerate() {
            write!(line, "{}{c}", if i > 0 { "," } else { "" })?;
        }
        write!(line, ";AN={an}")?;
    }
    write!(line, ";MQ={mq:.2}")?;
    if id != "." {
        line.extend_from_slice(b";DB");
    }
    write!(line, ";TYPE={}", types.join(","))?;
    if samples > 0 {
        line.extend_from_slice(b"\tGT:GQ:DP:AD");
        let sep = if phased { '|' } else { '/' };
        for g in &gts {
            match g {
                None => line.extend_from_slice(b"\t./.:.:0:."),
                Some((a, b)) => {
                    let depth = 5 + rng.below(40);
                    let gq = 10 + rng.below(89);
                    let alt_depth = if *a + *b > 0 { depth / 2 } else { rng.below(2) };
                    write!(
                        line,
                        "\t{a}{sep}{b}:{gq}:{depth}:{}",
                        depth - alt_depth.min(depth)
                    )?;
                    for i in 0..alts.len() {
                        let d = if (i as u32 + 1 == *a) || (i as u32 + 1 == *b) {
                            alt_depth
                        } else {
                            0
                        };
                        write!(line, ",{d}")?;
                    }
                }
            }
        }
    }
    line.push(b'\n');
    Ok(())
}

/// Generates into `path`: BGZF when the name ends in `.gz`, `.bgz` or `.bgzf`, text otherwise.
pub fn generate_file(path: &Path, options: &GenOptions) -> io::Result<()> {
    let file = File::create(path)?;
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".gz") || name.ends_with(".bgz") || name.ends_with(".bgzf") {
        let mut w = noodles::bgzf::io::Writer::new(BufWriter::new(file));
        generate(&mut w, options)?;
        w.finish()?.flush()
    } else {
        let mut w = BufWriter::new(file);
        generate(&mut w, options)?;
        w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let opts = GenOptions {
            records: 500,
            samples: 3,
            seed: 7,
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        generate(&mut a, &opts).unwrap();
        generate(&mut b, &opts).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let records: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(records.len(), 500);
        assert!(records.iter().all(|r| r.split('\t').count() == 12));
        let header = crate::vcf::VcfHeader::parse_text(&text).unwrap();
        assert_eq!(header.samples, vec!["S00001", "S00002", "S00003"]);
    }
}
