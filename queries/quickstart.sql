-- Quick start: a VCF file is a table.
-- Data: data/example.vcf.gz, written by `vcfq gen data/example.vcf.gz --records 20000 --samples 8`
-- (the README's first command makes it).

-- How many records, over how many chromosomes?
SELECT count(*) AS records, count(DISTINCT chrom) AS chromosomes
FROM 'data/example.vcf.gz';

-- The first records, with INFO fields typed from the header (AF is a list: one value per ALT).
SELECT chrom, pos, id, ref, alt, qual, filter, info.DP AS dp, info.AF AS af
FROM 'data/example.vcf.gz'
LIMIT 5;

-- What the header declares.
SELECT section, id, number, type, description
FROM vcf_header('data/example.vcf.gz')
WHERE section IN ('INFO', 'FORMAT');
