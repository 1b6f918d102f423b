-- Per-sample genotype summary from the long form (one row per record x sample).
-- Data: data/example.vcf.gz (see quickstart.sql).

SELECT sample,
       count(*) AS sites,
       sum(CASE WHEN gt_dosage(GT) IS NULL THEN 1 ELSE 0 END) AS missing,
       sum(CASE WHEN gt_is_het(GT) THEN 1 ELSE 0 END) AS het,
       sum(CASE WHEN gt_dosage(GT) = 2 AND NOT gt_is_het(GT) THEN 1 ELSE 0 END) AS hom_alt,
       round(avg(DP), 2) AS mean_depth
FROM vcf_genotypes('data/example.vcf.gz')
GROUP BY sample
ORDER BY sample;

-- Non-reference genotypes of two samples on chromosome 22 (only their columns are decoded).
SELECT sample, count(*) AS non_ref
FROM vcf_genotypes('data/example.vcf.gz')
WHERE sample IN ('S00001', 'S00002') AND chrom = 'chr22' AND gt_dosage(GT) > 0
GROUP BY sample
ORDER BY sample;
