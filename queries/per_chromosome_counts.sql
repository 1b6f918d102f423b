-- Records per chromosome, with how many pass all filters and how many are SNPs.
-- Data: data/example.vcf.gz (see quickstart.sql).

SELECT chrom,
       count(*) AS records,
       sum(CASE WHEN array_has(filter, 'PASS') THEN 1 ELSE 0 END) AS passing,
       sum(CASE WHEN length(ref) = 1 AND length(alt[1]) = 1 THEN 1 ELSE 0 END) AS snps
FROM 'data/example.vcf.gz'
GROUP BY chrom
ORDER BY chrom;
