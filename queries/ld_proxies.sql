-- LD proxies: the variants within 500 kb of chr1:2187447 (G>T) whose genotypes are most
-- correlated with its own, strongest first, with their r² (bcftools' LD r²: the squared
-- Pearson correlation of the samples' ALT dosages). dosage_vector() centres a site's dosages
-- and scales them to unit length, so 1 - cosine_distance of two sites is their r; an
-- uncalled genotype counts as the site's mean dosage, and a site that does not vary has no
-- vector (NULL) and is left out.
-- Data: data/example.vcf.gz (see quickstart.sql).

WITH window_sites AS (
    SELECT chrom, pos, ref, alt[1] AS alt, dosage_vector(genotypes) AS v
    FROM 'data/example.vcf.gz'
    WHERE chrom = 'chr1' AND pos BETWEEN 2187447 - 500000 AND 2187447 + 500000
),
target AS (
    SELECT v FROM window_sites WHERE pos = 2187447
)
SELECT w.chrom, w.pos, w.ref, w.alt, round(power(1 - cosine_distance(w.v, t.v), 2), 4) AS r2
FROM window_sites w CROSS JOIN target t
WHERE w.pos <> 2187447 AND w.v IS NOT NULL
ORDER BY r2 DESC, w.pos
LIMIT 10;
