#!/usr/bin/env python3
"""vcfq against bcftools, side by side in one run (a benchmark, not a test).

usage: benches/compare.py [--vcfq BIN] [--work DIR] [--scale F] [--repeat N] [--only NAME]

Generates three data sets with the project's own generator (`vcfq gen`), BGZF-compressed and
indexed (.tbi, and .csi for the largest):
    sites.vcf.gz   2,000,000 records, no samples (and sites.bcf, with .csi, made by bcftools)
    g100.vcf.gz      200,000 records x 100 samples
    g2504.vcf.gz      20,000 records x 2,504 samples (GT:GQ:DP:AD)
and, when ../shared/tools/gen-vcf is there, a GT-only 1000 Genomes-like cohort:
    gt1kg.vcf.gz      20,000 records x 2,504 samples (GT only, phased)
then runs each query with vcfq and with its peer, checks that both give the same answer (for
the VCF/BCF writes, `COPY … TO '….vcf.gz'` against `bcftools view -i … -Oz`: both files as
bcftools queries them), and
prints wall time, the ratio (peer time / vcfq time: above 1 means vcfq is faster) and peak RSS.
--scale shrinks the record counts for a quick look (e.g. 0.1). Needs bcftools, bgzip, tabix and
GNU time; installs them with apt-get when missing.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def ensure_tools():
    missing = [p for p, exe in (("bcftools", "bcftools"), ("tabix", "tabix"), ("time", "/usr/bin/time")) if not shutil.which(exe)]
    if missing:
        sudo = "" if os.geteuid() == 0 else "sudo "
        sh(f"{sudo}apt-get update -qq && {sudo}apt-get install -y -qq {' '.join(missing)} >/dev/null")
    # the shared generator of the GT-only cohort needs numpy
    if os.path.exists(GEN_VCF):
        try:
            import numpy  # noqa: F401
        except ImportError:
            sh(f"{sys.executable} -m pip install -q numpy")


def measure(cmd, out_path):
    """Runs a shell command with stdout to out_path; returns (seconds, peak RSS in MiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        start = time.perf_counter()
        with open(out_path, "wb") as out:
            p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", t.name, "bash", "-c", f"set -o pipefail; {cmd}"],
                               stdout=out, stderr=subprocess.PIPE)
        secs = time.perf_counter() - start
        if p.returncode != 0:
            raise RuntimeError(f"failed ({p.returncode}): {cmd}\n{p.stderr.decode()[-2000:]}")
        rss_kb = max((int(x) for x in t.read().split() if x.isdigit()), default=0)
    return secs, rss_kb / 1024


def lines(path, skip_header=False):
    with open(path) as f:
        rows = [l.rstrip("\n") for l in f if l.strip()]
    return rows[1:] if skip_header else rows


GEN_VCF = os.path.join(ROOT, "..", "shared", "tools", "gen-vcf")


def generate(vcfq, work, scale):
    sets = {"sites": (2_000_000, 0, "tbi"), "g100": (200_000, 100, "tbi"), "g2504": (20_000, 2504, "csi")}
    paths = {}
    for name, (records, samples, index) in sets.items():
        records = max(1000, int(records * scale))
        path = os.path.join(work, f"{name}.{records}.vcf.gz")
        if not os.path.exists(path + "." + index):
            print(f"generating {path} ({records} records x {samples} samples)", file=sys.stderr)
            sh(f"{vcfq} gen {path} --records {records} --samples {samples}")
            sh(f"tabix -f -p vcf {path}" if index == "tbi" else f"bcftools index -f -c {path}")
        paths[name] = path
    # the sites as BCF, written (and indexed) by bcftools
    bcf = paths["sites"][: -len(".vcf.gz")] + ".bcf"
    if not os.path.exists(bcf + ".csi"):
        print(f"converting to {bcf}", file=sys.stderr)
        sh(f"bcftools view -Ob -o {bcf} {paths['sites']} && bcftools index -f -c {bcf}")
    paths["sites_bcf"] = bcf
    # a GT-only 1000 Genomes-like cohort from the shared generator
    if os.path.exists(GEN_VCF):
        records = max(1000, int(20_000 * scale))
        path = os.path.join(work, f"gt1kg.{records}.vcf.gz")
        if not os.path.exists(path + ".tbi"):
            print(f"generating {path} ({records} records x 2504 samples, GT only)", file=sys.stderr)
            plain = path[: -len(".gz")]
            sh(f"python3 {GEN_VCF} gt1kg {plain} {records} 2504 && bgzip -f {plain} && tabix -f -p vcf {path}")
        paths["gt1kg"] = path
    return paths


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/vcfq/target"))
    ap.add_argument("--vcfq", default=os.path.join(target, "release", "vcfq"))
    ap.add_argument("--work", default=os.path.join(target, "bench-data"))
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    ensure_tools()
    os.makedirs(a.work, exist_ok=True)
    d = generate(a.vcfq, a.work, a.scale)
    q = lambda sql, fmt="tsv": f"{a.vcfq} -q --format {fmt} -c \"{sql}\""
    out = lambda name: os.path.join(a.work, name)
    sites, g100, g2504, sites_bcf = d["sites"], d["g100"], d["g2504"], d["sites_bcf"]
    gt1kg = d.get("gt1kg")

    def same_rows(vcfq_out, peer_out):
        got, want = sorted(lines(vcfq_out, skip_header=True)), sorted(lines(peer_out))
        return "ok" if got == want else f"DIFFER: vcfq {len(got)} rows, peer {len(want)} rows"

    def same_count_minus_header(path):
        header = int(subprocess.run(f"bgzip -dc {path} | head -n 10000 | grep -c '^#'", shell=True, capture_output=True, text=True).stdout)
        def check(vcfq_out, peer_out):
            got, want = int(lines(vcfq_out, skip_header=True)[0]), int(lines(peer_out)[0]) - header
            return "ok" if got == want else f"DIFFER: vcfq {got}, peer {want}"
        return check

    def psc_nonref(path):
        """Per-sample non-reference genotype counts from `bcftools stats -s -`: PSC's nNonRefHom,
        nHets (SNPs only), nIndels and nHapAlt."""
        counts = {}
        for l in lines(path):
            f = l.split("\t")
            if f[0] == "PSC":  # PSC id sample nRefHom nNonRefHom nHets nTs nTv nIndels depth nSingletons nHapRef nHapAlt nMissing
                counts[f[2]] = int(f[4]) + int(f[5]) + int(f[8]) + int(f[12])
        return counts

    def nonref_reference(path):
        """Per-sample calls with a non-reference allele, counted from bcftools' own reading of
        the genotypes (not timed; cached beside the file). `bcftools stats` counts a call in
        more than one PSC column at sites that mix SNP and indel alleles, so its sums are not an
        exact reference."""
        cached = path + ".nonref.tsv"
        if not os.path.exists(cached):
            sh(f"bcftools query -f '[%SAMPLE\\t%GT\\n]' {path} | awk -F'\\t' '$2 ~ /[1-9]/ {{n[$1]++}} END {{for (s in n) print s \"\\t\" n[s]}}' > {cached}")
        return {l.split("\t")[0]: int(l.split("\t")[1]) for l in lines(cached)}

    def same_nonref(path):
        def check(vcfq_out, peer_out):
            got = {l.split("\t")[0]: int(l.split("\t")[1]) for l in lines(vcfq_out, skip_header=True)}
            want = nonref_reference(path)
            stats = {k: v for k, v in psc_nonref(peer_out).items() if v}
            if got != want:
                return f"DIFFER: {sum(got.values())} vs {sum(want.values())} non-ref calls"
            return "ok" if got == stats else f"ok (bcftools stats PSC sums differ by {sum(stats.values()) - sum(want.values())})"
        return check

    def parquet_rows(path, peer_path, expected):
        def check(vcfq_out, peer_out):
            n = subprocess.run(q(f"SELECT count(*) FROM '{path}'", "csv"), shell=True, capture_output=True, text=True).stdout.split()[-1]
            m = subprocess.run(f"bcftools view -H {peer_path} | wc -l", shell=True, capture_output=True, text=True).stdout.strip()
            return "ok" if n == m == str(expected()) else f"DIFFER: parquet {n} rows, bcf {m}, vcf {expected()}"
        return check

    count_records = lambda p: int(subprocess.run(f"bgzip -dc {p} | grep -vc '^#'", shell=True, capture_output=True, text=True).stdout)
    region = "chr2:10000000-20000000"
    nonref_sql = lambda p: (f"SELECT sample, count(*) FROM vcf_genotypes('{p}') WHERE gt_dosage(GT) > 0 GROUP BY sample")
    benches = [
        ("count(*) sites", q(f"SELECT count(*) FROM '{sites}'"), f"bgzip -dc {sites} | wc -l", same_count_minus_header(sites),
         "bgzip -dc | wc -l"),
        ("INFO AF filter", q(f"SELECT chrom, pos, ref, array_to_string(alt, ',') FROM '{sites}' WHERE info.AF[1] > 0.1"),
         f"bcftools query -i 'INFO/AF[0]>0.1' -f '%CHROM\\t%POS\\t%REF\\t%ALT\\n' {sites}", same_rows, "bcftools query -i"),
        ("region " + region, q(f"SELECT chrom, pos, ref, array_to_string(alt, ',') FROM read_vcf('{sites}', '{region}')"),
         f"bcftools query -r {region} -f '%CHROM\\t%POS\\t%REF\\t%ALT\\n' {sites}", same_rows, "bcftools query -r"),
        ("region as SQL filter", q(f"SELECT chrom, pos, ref, array_to_string(alt, ',') FROM '{sites}' WHERE chrom = 'chr2' AND pos BETWEEN 10000000 AND 20000000"),
         f"bcftools query -r {region} -f '%CHROM\\t%POS\\t%REF\\t%ALT\\n' {sites} | awk '$2 >= 10000000'", same_rows, "bcftools query -r"),
        ("group by chrom", q(f"SELECT count(*), chrom FROM '{sites}' GROUP BY chrom"),
         f"bcftools query -f '%CHROM\\n' {sites} | uniq -c | sed 's/^ *//; s/ /\\t/'", same_rows, "bcftools query | uniq -c"),
        ("non-ref per sample, 100", q(nonref_sql(g100)), f"bcftools stats -s - {g100}", same_nonref(g100), "bcftools stats -s -"),
        ("non-ref per sample, 2504", q(nonref_sql(g2504)), f"bcftools stats -s - {g2504}", same_nonref(g2504), "bcftools stats -s -"),
    ]
    if gt1kg:
        benches += [
            ("non-ref/sample, 1kg GT-only", q(nonref_sql(gt1kg)), f"bcftools stats -s - {gt1kg}", same_nonref(gt1kg), "bcftools stats -s -"),
            ("same, regexp_like(GT)", q(f"SELECT sample, count(*) FROM vcf_genotypes('{gt1kg}') WHERE regexp_like(GT, '[1-9]') GROUP BY sample"),
             f"bcftools stats -s - {gt1kg}", same_nonref(gt1kg), "bcftools stats -s -"),
        ]
    benches += [
        ("INFO AF filter, BCF", q(f"SELECT chrom, pos, ref, array_to_string(alt, ',') FROM '{sites_bcf}' WHERE info.AF[1] > 0.1"),
         f"bcftools query -i 'INFO/AF[0]>0.1' -f '%CHROM\\t%POS\\t%REF\\t%ALT\\n' {sites_bcf}", same_rows, "bcftools query -i, BCF"),
        ("region, BCF (csi)", q(f"SELECT chrom, pos, ref, array_to_string(alt, ',') FROM '{sites_bcf}' WHERE chrom = 'chr2' AND pos BETWEEN 10000000 AND 20000000"),
         f"bcftools query -r {region} -f '%CHROM\\t%POS\\t%REF\\t%ALT\\n' {sites_bcf} | awk '$2 >= 10000000'", same_rows, "bcftools query -r, BCF"),
        ("full scan, genotypes", q(f"SELECT count(GT), sum(DP) FROM vcf_genotypes('{g2504}')"),
         f"bcftools query -f '[%GT\\t%DP\\n]' {g2504} | awk -F'\\t' '{{n++; if ($2 != \".\") s += $2}} END {{print n \"\\t\" s}}'",
         same_rows, "bcftools query [%GT %DP]"),
        ("VCF->Parquet sites", q(f"COPY (SELECT * FROM '{sites}') TO '{out('sites.parquet')}' STORED AS PARQUET OPTIONS (compression 'zstd(1)')"),
         f"bcftools view -Ob -o {out('sites.bcf')} {sites}", parquet_rows(out('sites.parquet'), out('sites.bcf'), lambda: count_records(sites)), "bcftools view -Ob"),
        ("VCF->Parquet genotypes", q(f"COPY (SELECT * FROM '{g100}') TO '{out('g100.parquet')}' STORED AS PARQUET OPTIONS (compression 'zstd(1)')"),
         f"bcftools view -Ob -o {out('g100.bcf')} {g100}", parquet_rows(out('g100.parquet'), out('g100.bcf'), lambda: count_records(g100)), "bcftools view -Ob"),
    ]
    def same_records(vcfq_path, peer_path, fields):
        """Both written files as bcftools reads them: the same records, field for field."""
        def check(vcfq_out, peer_out):
            fmt = "\t".join(["%CHROM", "%POS", "%REF", "%ALT"] + fields) + "\n"
            got = subprocess.run(["bcftools", "query", "-f", fmt, vcfq_path], capture_output=True, text=True)
            want = subprocess.run(["bcftools", "query", "-f", fmt, peer_path], capture_output=True, text=True)
            if got.returncode or want.returncode:
                return f"DIFFER: bcftools query failed: {got.stderr[-300:]} {want.stderr[-300:]}"
            n = want.stdout.count("\n")
            return f"ok ({n} records)" if got.stdout == want.stdout else f"DIFFER: {got.stdout.count(chr(10))} vs {n} records"
        return check

    def write_bench(name, path, sql_filter, bcf_filter, fields, ext="vcf.gz", peer_flags="-Oz", threads="", index=False):
        slug = "".join(c if c.isalnum() else "_" for c in name)
        mine, theirs = out(f"w_{slug}.vcfq.{ext}"), out(f"w_{slug}.bcftools.{ext}")
        options = " OPTIONS ('index' 'tbi')" if index else ""
        vcmd = q(f"COPY (SELECT * FROM '{path}' WHERE {sql_filter}) TO '{mine}'{options}")
        pcmd = f"bcftools view {threads} -i '{bcf_filter}' {peer_flags} -o {theirs} {path}"
        peer = f"bcftools view -i {peer_flags}{' ' + threads if threads else ''}"
        if index:
            pcmd += f" && tabix -f -p vcf {theirs}"
            peer += " && tabix"
        return (f"write {name}", vcmd, pcmd, same_records(mine, theirs, fields), peer)

    benches += [
        write_bench("sites AF>0.1", sites, "info.AF[1] > 0.1", "INFO/AF[0]>0.1", ["%INFO/AF", "%INFO/DP"]),
        write_bench("sites AF>0.1 2thr", sites, "info.AF[1] > 0.1", "INFO/AF[0]>0.1", ["%INFO/AF", "%INFO/DP"], threads="--threads 2"),
        write_bench("sites AF>0.1 +tbi", sites, "info.AF[1] > 0.1", "INFO/AF[0]>0.1", ["%INFO/AF", "%INFO/DP"], index=True),
        write_bench("sites AF>0.1 BCF", sites, "info.AF[1] > 0.1", "INFO/AF[0]>0.1", ["%INFO/AF", "%INFO/DP"], ext="bcf", peer_flags="-Ob"),
        write_bench("g2504 AF>0.1", g2504, "info.AF[1] > 0.1", "INFO/AF[0]>0.1", ["%INFO/AF", "[%GT:%DP:%AD ]"]),
    ]
    if gt1kg:
        benches += [write_bench("gt1kg AF>0.05", gt1kg, "info.AF[1] > 0.05", "INFO/AF[0]>0.05", ["%INFO/AC", "[%GT ]"])]
    print(f"{'query':28} {'vcfq s':>8} {'peer s':>8} {'ratio':>6} {'vcfq MiB':>9} {'peer MiB':>9}  check  (peer)")
    for name, vcmd, pcmd, check, peer in benches:
        if a.only and a.only not in name:
            continue
        best_v = best_p = None
        for _ in range(a.repeat):
            v = measure(vcmd, out("vcfq.out"))
            p = measure(pcmd, out("peer.out"))
            best_v = v if best_v is None or v[0] < best_v[0] else best_v
            best_p = p if best_p is None or p[0] < best_p[0] else best_p
        verdict = check(out("vcfq.out"), out("peer.out"))
        print(f"{name:28} {best_v[0]:8.2f} {best_p[0]:8.2f} {best_p[0] / best_v[0]:6.2f} {best_v[1]:9.0f} {best_p[1]:9.0f}  {verdict}  ({peer})", flush=True)


if __name__ == "__main__":
    main()
