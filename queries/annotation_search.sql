-- Semantic search over the header's field descriptions: which INFO/FORMAT fields are about
-- sequencing depth? embed_text() embeds text with all-MiniLM-L6-v2 (run in vcfq; its files are
-- installed by scripts/models), and the descriptions nearest to the question come first.
-- Data: data/example.vcf.gz (see quickstart.sql).

SELECT section, id, description,
       round(cosine_distance(embed_text(description),
                             embed_text('how many sequencing reads cover the position')), 3) AS distance
FROM vcf_header('data/example.vcf.gz')
WHERE section IN ('INFO', 'FORMAT')
ORDER BY distance, section, id
LIMIT 4;
