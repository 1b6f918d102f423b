//! Test VCFs written by the tests themselves: a hand-written file full of edge cases, its
//! BGZF, gzip and BCF twins, a Windows-line-ending file without contigs, malformed files, and
//! a directory of several files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The edge-case file: typed INFO (A/R/./Flag/Character), missing values inside lists,
/// multi-allelic, symbolic and breakend alleles, haploid/triploid/missing genotypes,
/// trailing FORMAT fields dropped.
pub const SAMPLE_VCF: &str = "\
##fileformat=VCFv4.3
##FILTER=<ID=PASS,Description=\"All filters passed\">
##FILTER=<ID=q10,Description=\"Quality below 10\">
##contig=<ID=chr1,length=1000000>
##contig=<ID=chr2,length=500000>
##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Total depth\">
##INFO=<ID=AF,Number=A,Type=Float,Description=\"Allele frequency\">
##INFO=<ID=AC,Number=A,Type=Integer,Description=\"Allele count\">
##INFO=<ID=DB,Number=0,Type=Flag,Description=\"dbSNP membership\">
##INFO=<ID=SVTYPE,Number=1,Type=String,Description=\"Structural variant type\">
##INFO=<ID=END,Number=1,Type=Integer,Description=\"End position\">
##INFO=<ID=CSQ,Number=.,Type=String,Description=\"Consequences\">
##INFO=<ID=AA,Number=1,Type=Character,Description=\"Ancestral allele\">
##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">
##FORMAT=<ID=GQ,Number=1,Type=Integer,Description=\"Genotype quality\">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description=\"Read depth\">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description=\"Allelic depths\">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNA00001\tNA00002\tNA00003
chr1\t100\trs1\tA\tG\t29.5\tPASS\tDP=14;AF=0.5;AC=3;DB;AA=A\tGT:GQ:DP:AD\t0|1:48:8:4,4\t1|1:43:5:0,5\t0/0:41:3:3,0
chr1\t200\t.\tG\tA,T\t3\tq10\tDP=11;AF=0.25,0.125;AC=1,.;CSQ=missense,synonymous\tGT:GQ:DP:AD\t1/2:20:6:1,2,3\t./.:.:.:.\t0/1:10:4:2,2,.
chr1\t300\trs3\tTAC\tT\t.\t.\t.\tGT\t1\t0|0|1\t.
chr1\t400\t.\tC\t<DEL>\t50\tPASS\tSVTYPE=DEL;END=1400\tGT:GQ\t0/1:30\t0/0\t1/1:.
chr2\t50\tbnd1\tT\tT[chr1:500[\t.\tPASS\tSVTYPE=BND\tGT\t0/1\t0/.\t./1
chr2\t60\t.\tA\t.\t10\tPASS\tDP=.\tGT:DP\t0/0:7\t0/0:.\t0/0:9
";

/// A sites-only VCF 4.0 with Windows line endings, no ##contig lines, and an undeclared INFO field.
pub const CRLF_VCF: &str = "##fileformat=VCFv4.0\r\n##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">\r\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\r\n1\t10\t.\tA\tC\t.\tPASS\tDP=3;XU=abc\r\n1\t20\t.\tG\tGT\t7.5\t.\tXU=def;DP=4\r\nMT\t5\t.\tT\t*\t.\t.\t.\r\n";

/// A clean file that noodles also accepts (converted to BCF).
pub const CLEAN_VCF: &str = "\
##fileformat=VCFv4.3
##FILTER=<ID=PASS,Description=\"All filters passed\">
##contig=<ID=chr1,length=1000000>
##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Total depth\">
##INFO=<ID=AF,Number=A,Type=Float,Description=\"Allele frequency\">
##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">
##FORMAT=<ID=GQ,Number=1,Type=Integer,Description=\"Genotype quality\">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB
chr1\t10\trs10\tA\tC\t20\tPASS\tDP=5;AF=0.5\tGT:GQ\t0/1:30\t0/0:40
chr1\t20\t.\tG\tT,C\t.\tPASS\tDP=6;AF=0.25,0.25\tGT:GQ\t1/2:10\t0|1:.
chr1\t30\t.\tT\tA\t5\tPASS\tAF=1\tGT:GQ\t1/1:50\t./.:.
";

/// Edge cases that BCF can hold (written as BCF by noodles): multi-allelic sites, missing
/// values inside lists, flags, strings, haploid and missing calls, a filtered site, an ALT `.`.
pub const SAMPLE_BCF_VCF: &str = "\
##fileformat=VCFv4.3
##FILTER=<ID=PASS,Description=\"All filters passed\">
##FILTER=<ID=q10,Description=\"Quality below 10\">
##contig=<ID=chr1,length=1000000>
##contig=<ID=chr2,length=500000>
##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Total depth\">
##INFO=<ID=AF,Number=A,Type=Float,Description=\"Allele frequency\">
##INFO=<ID=AC,Number=A,Type=Integer,Description=\"Allele count\">
##INFO=<ID=DB,Number=0,Type=Flag,Description=\"dbSNP membership\">
##INFO=<ID=CSQ,Number=.,Type=String,Description=\"Consequences\">
##INFO=<ID=AA,Number=1,Type=String,Description=\"Ancestral allele\">
##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">
##FORMAT=<ID=GQ,Number=1,Type=Integer,Description=\"Genotype quality\">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description=\"Read depth\">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description=\"Allelic depths\">
##FORMAT=<ID=FL,Number=2,Type=Float,Description=\"Two floats\">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNA00001\tNA00002\tNA00003
chr1\t100\trs1\tA\tG\t29.5\tPASS\tDP=14;AF=0.5;AC=3;DB;AA=A\tGT:GQ:DP:AD:FL\t0|1:48:8:4,4:10.5,20.25\t1|1:43:5:0,5:.,.\t0/0:41:3:3,0:1.5,.
chr1\t200\t.\tG\tA,T\t3\tq10\tDP=11;AF=0.25,0.125;AC=1,.;CSQ=missense,synonymous\tGT:GQ:DP:AD\t1/2:20:6:1,2,3\t./.:.:.:.\t0/1:10:4:2,2,.
chr1\t300\trs3\tTAC\tT\t.\t.\tAF=0.1\tGT\t1\t0|0\t./.
chr2\t60\t.\tA\t.\t10\tPASS\t.\tGT:DP\t0/0:7\t0/0:.\t0/0:9
";

/// VCF 4.5 local-allele FORMAT fields (Number=LR, LG).
pub const LOCAL_ALLELES_VCF: &str = "\
##fileformat=VCFv4.5
##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">
##FORMAT=<ID=LAA,Number=.,Type=Integer,Description=\"Local alternate alleles\">
##FORMAT=<ID=LAD,Number=LR,Type=Integer,Description=\"Local allelic depths\">
##FORMAT=<ID=LPL,Number=LG,Type=Integer,Description=\"Local phred-scaled genotype likelihoods\">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2
1\t100\t.\tA\tC,G,T\t.\tPASS\t.\tGT:LAA:LAD:LPL\t0/1:2:5,3:0,10,40\t1/2:1,3:0,4,6:60,30,50,20,0,70
";

/// Line 5 (the second record) has a POS that is not a number.
pub const MALFORMED_VCF: &str = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t10\t.\tA\tC\t.\t.\t.\n\n1\tten\t.\tA\tC\t.\t.\t.\n1\t30\t.\tA\tC\t.\t.\t.\n";

/// Records of the generated fixture `gen.vcf(.gz)`.
pub const GEN_RECORDS: u64 = 30_000;

/// The directory holding every fixture, written once per test run.
pub fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vcfq-tests-{}", std::process::id()));
        write_all(&dir).expect("writing test fixtures");
        dir
    })
}

fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("multi"))?;
    std::fs::write(dir.join("sample.vcf"), SAMPLE_VCF)?;
    std::fs::write(dir.join("sample_bcf.vcf"), SAMPLE_BCF_VCF)?;
    std::fs::write(dir.join("crlf.vcf"), CRLF_VCF)?;
    std::fs::write(dir.join("local_alleles.vcf"), LOCAL_ALLELES_VCF)?;
    std::fs::write(
        dir.join("hla.vcf"),
        "##fileformat=VCFv4.2\n##contig=<ID=HLA-A*01:01:01:01,length=3503>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nHLA-A*01:01:01:01\t100\t.\tA\tG\t.\t.\t.\n1\t5\t.\tC\tT\t.\t.\t.\n",
    )?;
    std::fs::write(dir.join("clean.vcf"), CLEAN_VCF)?;
    std::fs::write(dir.join("malformed.vcf"), MALFORMED_VCF)?;
    std::fs::write(dir.join("empty.vcf"), "")?;
    std::fs::write(
        dir.join("extra_sample_fields.vcf"),
        "##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"g\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n1\t10\t.\tA\tC\t.\t.\t.\tGT\t0/1:5\n",
    )?;
    std::fs::write(
        dir.join("no_chrom_line.vcf"),
        "##fileformat=VCFv4.2\n##INFO=<ID=DP,Number=1,Type=Integer,Description=\"d\">\n",
    )?;
    // the same records as BGZF (named .bgz), plain gzip (named .gz), and BCF without a telling name
    let mut bgzf =
        noodles::bgzf::io::Writer::new(std::fs::File::create(dir.join("sample.vcf.bgz"))?);
    bgzf.write_all(SAMPLE_VCF.as_bytes())?;
    bgzf.try_finish()?;
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.join("sample.gzip.vcf.gz"))?,
        flate2::Compression::default(),
    );
    gz.write_all(SAMPLE_VCF.as_bytes())?;
    gz.finish()?;
    write_bcf(CLEAN_VCF, &dir.join("clean.data"))?;
    // several files, one table
    let (head, body) = CLEAN_VCF.split_at(CLEAN_VCF.find("chr1\t10").unwrap_or(0));
    let lines: Vec<&str> = body.lines().collect();
    std::fs::write(dir.join("multi/part1.vcf"), format!("{head}{}\n", lines[0]))?;
    std::fs::write(
        dir.join("multi/part2.vcf"),
        format!("{head}{}\n{}\n", lines[1], lines[2]),
    )?;
    // a generated file as BGZF with a tabix index, as plain text, and as (unsplittable) plain gzip
    let options = vcfq::generator::GenOptions {
        records: GEN_RECORDS,
        samples: 2,
        seed: 3,
    };
    vcfq::generator::generate_file(&dir.join("gen.vcf.gz"), &options)?;
    vcfq::generator::generate_file(&dir.join("gen.vcf"), &options)?;
    match noodles::vcf::fs::index(dir.join("gen.vcf.gz"))? {
        noodles::vcf::Index::Tabix(index) => {
            noodles::tabix::fs::write(dir.join("gen.vcf.gz.tbi"), &index)?
        }
        noodles::vcf::Index::Csi(index) => {
            noodles::csi::fs::write(dir.join("gen.vcf.gz.csi"), &index)?
        }
    }
    // the same with a bad record at the end (line 40 + 30,000 + 1), read in byte ranges
    let mut bad = std::fs::read(dir.join("gen.vcf"))?;
    bad.extend_from_slice(b"chr22\tx\t.\tA\tC\t.\t.\t.\tGT\t0/0\t0/1\n");
    std::fs::write(dir.join("bad_tail.vcf"), bad)?;
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.join("gen.gzip.vcf.gz"))?,
        flate2::Compression::fast(),
    );
    vcfq::generator::generate(&mut gz, &options)?;
    gz.finish()?;
    // the edge cases of untrusted input (tests/slt/edges.slt)
    std::fs::write(
        dir.join("telomere.vcf"),
        "##fileformat=VCFv4.3\n##contig=<ID=1,length=1000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t0\ttel\tN\tA\t.\t.\t.\n1\t5\t.\tC\tT\t.\t.\t.\n2\t0\ttel2\tN\t.\t.\t.\t.\n",
    )?;
    std::fs::write(
        dir.join("reserved_ints.vcf"),
        "##fileformat=VCFv4.3\n##INFO=<ID=DP,Number=1,Type=Integer,Description=\"d\">\n##INFO=<ID=AC,Number=.,Type=Integer,Description=\"c\">\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"g\">\n##FORMAT=<ID=DP,Number=1,Type=Integer,Description=\"d\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n1\t10\t.\tA\tC\t.\t.\tDP=-2147483648;AC=-2147483641,-2147483640,7\tGT:DP\t0/1:-2147483645\n1\t20\t.\tA\tC\t.\t.\tDP=-5\tGT:DP\t0/1:3\n",
    )?;
    // a BCF whose header claims 4 GiB: read as truncated, not allocated
    let mut bcf = b"BCF\x02\x02".to_vec();
    bcf.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    bcf.extend_from_slice(b"##fileformat=VCFv4.3\n");
    std::fs::write(dir.join("huge_header_length.bcf"), bcf)?;
    // an INFO and a FORMAT field first used by the third record, undeclared (vcf.infer_records)
    std::fs::write(
        dir.join("late_undeclared.vcf"),
        "##fileformat=VCFv4.3\n##INFO=<ID=DP,Number=1,Type=Integer,Description=\"d\">\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"g\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n1\t10\t.\tA\tC\t.\t.\tDP=1\tGT\t0/1\n1\t20\t.\tA\tC\t.\t.\tDP=2\tGT\t0/0\n1\t30\t.\tA\tC\t.\t.\tDP=3;LATE=x\tGT:LF\t1/1:z\n",
    )?;
    // the generated file as BCF, its records straddling BGZF blocks (as htslib writes them),
    // with a CSI index; and the edge-case file as BCF, a block every two records
    let step = |what: &'static str| {
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"))
    };
    write_bcf_blocks(
        &std::fs::read_to_string(dir.join("gen.vcf"))?,
        &dir.join("gen.bcf"),
        0,
    )
    .map_err(step("gen.bcf"))?;
    let csi = noodles::bcf::fs::index(dir.join("gen.bcf")).map_err(step("gen.bcf.csi"))?;
    noodles::csi::fs::write(dir.join("gen.bcf.csi"), &csi)?;
    write_bcf_blocks(SAMPLE_BCF_VCF, &dir.join("sample.bcf"), 2).map_err(step("sample.bcf"))?;
    // a huge line: 200,000 characters of INFO
    let big = format!(
        "{head}chr1\t10\t.\tA\tC\t.\tPASS\tDP=1;AF=0.5,{}\tGT:GQ\t0/1:1\t0/0:2\n",
        vec!["0.1"; 50_000].join(",")
    );
    std::fs::write(dir.join("huge_line.vcf"), big)?;
    Ok(())
}

/// Writes `vcf_text` as BGZF-compressed BCF whose blocks end after every `per_block` records
/// (0: only when full, so that records straddle blocks).
fn write_bcf_blocks(vcf_text: &str, out: &Path, per_block: usize) -> std::io::Result<()> {
    let mut reader = noodles::vcf::io::Reader::new(vcf_text.as_bytes());
    let header = reader.read_header()?;
    let mut writer = noodles::bcf::io::Writer::new(std::fs::File::create(out)?);
    writer.write_header(&header)?;
    writer.get_mut().flush()?;
    for (i, record) in reader.records().enumerate() {
        let record = record?;
        use noodles::vcf::variant::io::Write as _;
        writer
            .write_variant_record(&header, &record)
            .map_err(|e| std::io::Error::new(e.kind(), format!("record {}: {e}", i + 1)))?;
        if per_block > 0 && (i + 1) % per_block == 0 {
            writer.get_mut().flush()?;
        }
    }
    writer.try_finish()
}

fn write_bcf(vcf_text: &str, out: &Path) -> std::io::Result<()> {
    let mut reader = noodles::vcf::io::Reader::new(vcf_text.as_bytes());
    let header = reader.read_header()?;
    let mut writer = noodles::bcf::io::Writer::new(std::fs::File::create(out)?);
    writer.write_header(&header)?;
    for record in reader.records() {
        let record = record?;
        use noodles::vcf::variant::io::Write as _;
        writer.write_variant_record(&header, &record)?;
    }
    writer.try_finish()
}
