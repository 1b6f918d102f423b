//! BCF records ([`super::bcf`]) decoded straight into a [`BatchBuilder`]'s columns: typed
//! values go into the typed Arrow builders, only the columns, INFO fields, samples and FORMAT
//! fields the scan needs are touched, and a sample that is not read is skipped by arithmetic
//! (its values sit at a known offset), not parsed.

use std::sync::Arc;

use super::batch::{BatchBuilder, Column, ColumnKind};
use super::bcf::{BcfRecord, FormatBlock, Kind, SharedParts, Typed, Value, decimal_f64, gt_text};
use super::input::BcfDictionary;
use super::values::{ValueBuilder, Warnings};

/// How one BCF dictionary's indices map to a scan's fields.
pub struct BcfLookup {
    dictionary: Arc<BcfDictionary>,
    /// String index → INFO field of the scan: `Some(Some(i))` decoded, `Some(None)` known but
    /// not decoded, `None` not in the table.
    info: Vec<Option<Option<usize>>>,
    /// String index → FORMAT field of the scan that is decoded.
    format: Vec<Option<usize>>,
    /// Whether the string index is a FORMAT field of the table (decoded or not).
    format_known: Vec<bool>,
    shared: SharedParts,
    blocks: Vec<FormatBlock>,
    /// Per FORMAT field of the scan: its block in the current record.
    format_slots: Vec<Option<usize>>,
    /// Per INFO field of the scan: its value in the current record.
    info_slots: Vec<Option<usize>>,
    text: Vec<u8>,
}

impl BcfLookup {
    fn new(builder: &BatchBuilder, dictionary: &Arc<BcfDictionary>) -> Self {
        let plan = &builder.plan;
        let wide = plan.columns.contains(&ColumnKind::Genotypes);
        let find = |id: &str| -> Vec<usize> {
            dictionary
                .strings
                .iter()
                .enumerate()
                .filter(|(_, s)| s.as_deref() == Some(id))
                .map(|(i, _)| i)
                .collect()
        };
        let n = dictionary.strings.len();
        let mut info = vec![None; n];
        for (i, d) in plan.infos.iter().enumerate() {
            for k in find(&d.id) {
                info[k] = Some(Some(i));
            }
        }
        for id in &plan.skipped_infos {
            for k in find(id) {
                info[k] = Some(None);
            }
        }
        let mut format = vec![None; n];
        let mut format_known = vec![false; n];
        for id in &plan.skipped_formats {
            for k in find(id) {
                format_known[k] = true;
            }
        }
        for (i, d) in plan.formats.iter().enumerate() {
            let needed = wide || plan.columns.contains(&ColumnKind::Format(i));
            for k in find(&d.id) {
                format_known[k] = true;
                if needed {
                    format[k] = Some(i);
                }
            }
        }
        BcfLookup {
            dictionary: Arc::clone(dictionary),
            info,
            format,
            format_known,
            shared: SharedParts::default(),
            blocks: Vec::new(),
            format_slots: vec![None; plan.formats.len()],
            info_slots: vec![None; plan.infos.len()],
            text: Vec::new(),
        }
    }

    fn name(&self, index: i32) -> &[u8] {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.dictionary.strings.get(i))
            .and_then(|s| s.as_deref())
            .map_or(b"?", str::as_bytes)
    }
}

/// Whether a column needs the shared section taken apart (anything beyond CHROM/POS/QUAL).
pub(super) fn needs_shared(kind: &ColumnKind) -> bool {
    matches!(
        kind,
        ColumnKind::Id | ColumnKind::Ref | ColumnKind::Alt | ColumnKind::Filter | ColumnKind::Info
    )
}

impl BatchBuilder {
    /// Appends one BCF record read with `dictionary`. Fails, appending nothing, when the record
    /// does not parse (the message is for the caller to place at its record).
    pub fn append_bcf(
        &mut self,
        rec: &BcfRecord,
        dictionary: &Arc<BcfDictionary>,
        warnings: &mut Warnings,
    ) -> Result<(), String> {
        let mut lookup = self.take_lookup(dictionary);
        let outcome = self.append_with(rec, &mut lookup, warnings, &mut false);
        self.bcf = Some(lookup);
        outcome
    }

    /// [`Self::append_bcf`] for a record appended more than once (by the two phases of
    /// [`super::late`]): when `*parsed`, `parts` holds its shared section as an earlier append
    /// took it apart; otherwise it is taken apart into `parts` (when a column needs it) and
    /// `*parsed` set.
    pub fn append_bcf_parsed(
        &mut self,
        rec: &BcfRecord,
        dictionary: &Arc<BcfDictionary>,
        warnings: &mut Warnings,
        parts: &mut SharedParts,
        parsed: &mut bool,
    ) -> Result<(), String> {
        let mut lookup = self.take_lookup(dictionary);
        std::mem::swap(&mut lookup.shared, parts);
        let outcome = self.append_with(rec, &mut lookup, warnings, parsed);
        std::mem::swap(&mut lookup.shared, parts);
        self.bcf = Some(lookup);
        outcome
    }

    /// The builder's lookup for `dictionary` (made when it has none, or one for another
    /// dictionary), taken out of it to be put back after the append.
    fn take_lookup(&mut self, dictionary: &Arc<BcfDictionary>) -> Box<BcfLookup> {
        match self.bcf.take() {
            Some(lookup) if Arc::ptr_eq(&lookup.dictionary, dictionary) => lookup,
            _ => Box::new(BcfLookup::new(self, dictionary)),
        }
    }

    /// Appends `rec`; `parsed`: whether `l.shared` already holds its shared section (set when
    /// it is taken apart here).
    fn append_with(
        &mut self,
        rec: &BcfRecord,
        l: &mut BcfLookup,
        warnings: &mut Warnings,
        parsed: &mut bool,
    ) -> Result<(), String> {
        let plan = Arc::clone(&self.plan);
        let limits = l.dictionary.limits;
        let chrom = usize::try_from(rec.chrom())
            .ok()
            .and_then(|c| l.dictionary.contigs.get(c))
            .ok_or_else(|| format!("CHROM index {} is not a header contig", rec.chrom()))?;
        if !*parsed && (self.check_shared || plan.columns.iter().any(needs_shared)) {
            rec.parse_shared(&limits, &mut l.shared)?;
            *parsed = true;
        }
        if plan.needs_samples() {
            rec.parse_formats(&limits, &mut l.blocks)?;
            l.format_slots.iter_mut().for_each(|s| *s = None);
            for (b, block) in l.blocks.iter().enumerate() {
                let key = block.key as usize;
                match l.format.get(key).copied().flatten() {
                    Some(f) if l.format_slots[f].is_none() => l.format_slots[f] = Some(b),
                    Some(_) => {}
                    None if !l.format_known.get(key).copied().unwrap_or(false) => warnings.add(
                        "FORMAT/",
                        l.name(block.key),
                        "not in the table schema, ignored",
                        || None,
                    ),
                    None => {}
                }
            }
        }
        let shared = rec.shared();
        let indiv = rec.indiv();
        let copies = plan.rows_per_record();
        for (col, kind) in self.columns.iter_mut().zip(plan.columns.iter()) {
            match col {
                Column::Text(b, _, dot_is_null) => {
                    let v: &[u8] = match kind {
                        ColumnKind::Chrom => chrom.as_bytes(),
                        ColumnKind::Id => l.shared.id.map_or(&b"."[..], |t| t.get(shared).chars()),
                        _ => l
                            .shared
                            .alleles
                            .first()
                            .map_or(&b""[..], |r| &shared[r.clone()]),
                    };
                    for _ in 0..copies {
                        if *dot_is_null && (v == b"." || v.is_empty()) {
                            b.append_null();
                        } else {
                            b.append_value(String::from_utf8_lossy(v));
                        }
                    }
                }
                Column::Pos(b) => {
                    for _ in 0..copies {
                        b.append_value(rec.pos());
                    }
                }
                Column::List(b, ..) => {
                    for _ in 0..copies {
                        if *kind == ColumnKind::Alt {
                            let alts = l.shared.alleles.get(1..).unwrap_or(&[]);
                            if alts.is_empty() {
                                b.append_null();
                            } else {
                                for r in alts {
                                    b.values()
                                        .append_value(String::from_utf8_lossy(&shared[r.clone()]));
                                }
                                b.append(true);
                            }
                        } else {
                            let filter = l.shared.filter.map(|t| t.get(shared));
                            match filter {
                                Some(t) if t.count > 0 && t.kind != Kind::Missing => {
                                    for v in t.values() {
                                        if let Value::Int(k) = v {
                                            b.values()
                                                .append_value(String::from_utf8_lossy(l.name(k)));
                                        }
                                    }
                                    b.append(true);
                                }
                                _ => b.append_null(),
                            }
                        }
                    }
                }
                Column::Qual(b) => b.append_option(rec.qual().map(decimal_f64)),
                Column::Info(values, _) => {
                    l.info_slots.iter_mut().for_each(|s| *s = None);
                    for (k, (key, _)) in l.shared.info.iter().enumerate() {
                        match l.info.get(*key as usize).copied().flatten() {
                            Some(Some(i)) => {
                                if l.info_slots[i].is_none() {
                                    l.info_slots[i] = Some(k);
                                }
                            }
                            Some(None) => {}
                            None => warnings.add(
                                "INFO/",
                                l.name(*key),
                                "not in the table schema, ignored",
                                || None,
                            ),
                        }
                    }
                    for (i, b) in values.iter_mut().enumerate() {
                        let typed = l.info_slots[i].map(|k| l.shared.info[k].1.get(shared));
                        append_typed(b, typed.as_ref(), &plan.infos[i].id, warnings);
                    }
                }
                Column::Genotypes {
                    sample,
                    values,
                    offsets,
                    ..
                } => {
                    for &s in &plan.selected {
                        sample.append_value(&plan.sample_names[s]);
                        for (f, b) in values.iter_mut().enumerate() {
                            let typed = l.format_slots[f].map(|k| l.blocks[k].sample(indiv, s));
                            append_format(
                                b,
                                typed.as_ref(),
                                &plan.formats[f].id,
                                &mut l.text,
                                warnings,
                            );
                        }
                    }
                    let last = offsets.last().copied().unwrap_or(0);
                    offsets.push(last + plan.selected.len() as i32);
                }
                Column::Sample { .. } => {}
                Column::Format(f, b) => {
                    let block = l.format_slots[*f].map(|k| l.blocks[k]);
                    let id = &plan.formats[*f].id;
                    for &s in &plan.selected {
                        let typed = block.map(|blk| blk.sample(indiv, s));
                        append_format(b, typed.as_ref(), id, &mut l.text, warnings);
                    }
                }
            }
        }
        self.rows += copies;
        self.records += 1;
        Ok(())
    }
}

/// Appends a FORMAT value: GT is text made from its allele codes, the rest typed values.
fn append_format(
    b: &mut ValueBuilder,
    typed: Option<&Typed<'_>>,
    id: &str,
    text: &mut Vec<u8>,
    warnings: &mut Warnings,
) {
    if id != "GT" {
        return append_typed(b, typed, id, warnings);
    }
    let Some(t) = typed.filter(|t| t.kind != Kind::Char) else {
        return append_typed(b, typed, id, warnings);
    };
    match b {
        ValueBuilder::Dict(d) => d.append_with(t.bytes, || {
            let mut out = Vec::new();
            gt_text(t, &mut out);
            out
        }),
        other => {
            text.clear();
            gt_text(t, text);
            other.append(Some(text.as_slice()), id, warnings);
        }
    }
}

/// Appends a typed value (`None`: the field is absent) to a builder typed from the header,
/// converting where the types differ (an integer in a Float field, numbers in a String field).
pub fn append_typed(
    b: &mut ValueBuilder,
    typed: Option<&Typed<'_>>,
    field: &str,
    warnings: &mut Warnings,
) {
    let Some(t) = typed else {
        return b.append(None, field, warnings);
    };
    if let ValueBuilder::Flag(f) = b {
        f.append_value(true);
        return;
    }
    if t.is_missing() {
        return b.append_null();
    }
    if t.kind == Kind::Char {
        // text: the VCF parser's rules apply
        return b.append(Some(t.chars()), field, warnings);
    }
    let float_in_int = |warnings: &mut Warnings| {
        warnings.add(
            "",
            field.as_bytes(),
            "a Float where the header says Integer, read as NULL",
            || None,
        )
    };
    match b {
        ValueBuilder::Int(ib) => match t.value(0) {
            Value::Int(v) => ib.append_value(v),
            Value::Float(_) => {
                float_in_int(warnings);
                ib.append_null();
            }
            Value::Missing | Value::End => ib.append_null(),
        },
        ValueBuilder::Float(fb) => match t.value(0) {
            Value::Int(v) => fb.append_value(f64::from(v)),
            Value::Float(v) => fb.append_value(decimal_f64(v)),
            Value::Missing | Value::End => fb.append_null(),
        },
        ValueBuilder::IntList(lb) => {
            for v in t.values() {
                match v {
                    Value::Int(v) => lb.values().append_value(v),
                    Value::Float(_) => {
                        float_in_int(warnings);
                        lb.values().append_null();
                    }
                    Value::Missing | Value::End => lb.values().append_null(),
                }
            }
            lb.append(true);
        }
        ValueBuilder::FloatList(lb) => {
            for v in t.values() {
                match v {
                    Value::Int(v) => lb.values().append_value(f64::from(v)),
                    Value::Float(v) => lb.values().append_value(decimal_f64(v)),
                    Value::Missing | Value::End => lb.values().append_null(),
                }
            }
            lb.append(true);
        }
        // numbers in a text field: their VCF text
        other => {
            let text: Vec<String> = t
                .values()
                .map(|v| match v {
                    Value::Int(i) => i.to_string(),
                    Value::Float(f) => decimal_f64(f).to_string(),
                    Value::Missing | Value::End => ".".to_string(),
                })
                .collect();
            other.append(Some(text.join(",").as_bytes()), field, warnings);
        }
    }
}
