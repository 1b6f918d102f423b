-- Common passing variants: first ALT allele frequency above 10% and FILTER = PASS.
-- Data: data/example.vcf.gz (see quickstart.sql).

-- How many there are per chromosome.
SELECT chrom, count(*) AS common_variants
FROM 'data/example.vcf.gz'
WHERE info.AF[1] > 0.1 AND array_has(filter, 'PASS')
GROUP BY chrom
ORDER BY common_variants DESC, chrom
LIMIT 5;

-- The most frequent ones.
SELECT chrom, pos, ref, alt[1] AS alt, info.AF[1] AS af, info.AC[1] AS ac, info.AN AS an
FROM 'data/example.vcf.gz'
WHERE info.AF[1] > 0.1 AND array_has(filter, 'PASS')
ORDER BY af DESC, chrom, pos
LIMIT 10;
