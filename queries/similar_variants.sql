-- Variants like a given one: a one-base insertion on chr1 near 1 Mb. variant_embedding()
-- turns a variant into a unit vector of documented features (variant class, allele lengths
-- and bases, the contig, the position at several scales), so that similar variants are near;
-- the nearest by cosine distance come first.
-- Data: data/example.vcf.gz (see quickstart.sql).

SELECT chrom, pos, ref, alt[1] AS alt,
       round(cosine_distance(variant_embedding(chrom, pos, ref, alt),
                             variant_embedding('chr1', 1000000, 'A', 'AT')), 4) AS distance
FROM 'data/example.vcf.gz'
ORDER BY distance, chrom, pos
LIMIT 10;
