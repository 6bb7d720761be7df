//! Views as sheets: the one shape every export is written from — CSV always, Parquet when the
//! binary is built with the `parquet` feature — so that both carry exactly the same cells (a
//! count suppressed for the analyst is an empty CSV cell and a Parquet null, never a number).

/// How a view is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Csv,
    Parquet,
}

impl ExportFormat {
    /// Whether this binary writes Parquet (the `parquet` cargo feature).
    pub const PARQUET_BUILT: bool = cfg!(feature = "parquet");

    /// `json` (the default), `csv` or `parquet`; the error says what is accepted, and that
    /// Parquet needs a binary built with the feature when this one was not.
    pub fn parse(v: Option<&str>) -> Result<ExportFormat, String> {
        match v.map(str::trim) {
            None | Some("json") => Ok(ExportFormat::Json),
            Some("csv") => Ok(ExportFormat::Csv),
            Some("parquet") if Self::PARQUET_BUILT => Ok(ExportFormat::Parquet),
            Some("parquet") => Err("parquet is not built into this server (build it with `cargo build --release \
                                    --features parquet`); accepted here: json, csv"
                .to_string()),
            Some(other) => Err(format!("{} is not one of: json, csv, parquet", tongxing_domain::text::quote(other))),
        }
    }
}

/// A column of a sheet.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Text(Vec<String>),
    /// Counts; `None` is a suppressed count.
    Count(Vec<Option<u64>>),
    Int(Vec<i64>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Count(v) => v.len(),
            Column::Int(v) => v.len(),
        }
    }

    fn csv_cell(&self, i: usize) -> String {
        match self {
            Column::Text(v) => csv_quote(&v[i]),
            Column::Count(v) => v[i].map(|n| n.to_string()).unwrap_or_default(),
            Column::Int(v) => v[i].to_string(),
        }
    }
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// A table: named columns of equal length.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    /// The file's name without its extension (`flows`, `warnings`, …).
    pub name: String,
    pub columns: Vec<(String, Column)>,
}

impl Sheet {
    pub fn rows(&self) -> usize {
        self.columns.first().map(|(_, c)| c.len()).unwrap_or(0)
    }

    /// RFC 4180: a header line, then a line per row, CRLF; a suppressed count is empty.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let head: Vec<String> = self.columns.iter().map(|(n, _)| csv_quote(n)).collect();
        out.push_str(&head.join(","));
        out.push_str("\r\n");
        for i in 0..self.rows() {
            let line: Vec<String> = self.columns.iter().map(|(_, c)| c.csv_cell(i)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// One Parquet file with one row group: text as UTF-8 strings, counts as optional INT64
    /// (null: suppressed), other integers as required INT64.
    #[cfg(feature = "parquet")]
    pub fn to_parquet(&self) -> Result<Vec<u8>, String> {
        parquet_file(self).map_err(|e| format!("writing Parquet: {e}"))
    }
}

#[cfg(feature = "parquet")]
fn parquet_file(sheet: &Sheet) -> parquet::errors::Result<Vec<u8>> {
    use parquet::basic::{LogicalType, Repetition, Type as Physical};
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::types::Type;
    use std::sync::Arc;

    let mut fields = Vec::with_capacity(sheet.columns.len());
    for (name, column) in &sheet.columns {
        let field = match column {
            Column::Text(_) => Type::primitive_type_builder(name, Physical::BYTE_ARRAY)
                .with_logical_type(Some(LogicalType::String))
                .with_repetition(Repetition::REQUIRED),
            Column::Count(_) => {
                Type::primitive_type_builder(name, Physical::INT64).with_repetition(Repetition::OPTIONAL)
            }
            Column::Int(_) => Type::primitive_type_builder(name, Physical::INT64).with_repetition(Repetition::REQUIRED),
        };
        fields.push(Arc::new(field.build()?));
    }
    let schema = Arc::new(Type::group_type_builder("schema").with_fields(fields).build()?);
    let props = Arc::new(WriterProperties::builder().set_created_by("tongxing".into()).build());
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, props)?;
    let mut group = writer.next_row_group()?;
    for (_, column) in &sheet.columns {
        let Some(mut w) = group.next_column()? else { break };
        match column {
            Column::Text(v) => {
                let values: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(s.as_str())).collect();
                w.typed::<ByteArrayType>().write_batch(&values, None, None)?;
            }
            Column::Count(v) => {
                let values: Vec<i64> = v.iter().flatten().map(|n| *n as i64).collect();
                let defined: Vec<i16> = v.iter().map(|n| i16::from(n.is_some())).collect();
                w.typed::<Int64Type>().write_batch(&values, Some(&defined), None)?;
            }
            Column::Int(v) => {
                w.typed::<Int64Type>().write_batch(v, None, None)?;
            }
        }
        w.close()?;
    }
    group.close()?;
    writer.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet() -> Sheet {
        Sheet {
            name: "flows".into(),
            columns: vec![
                ("checkpoint".into(), Column::Text(vec!["CP-A".into(), "CP-\"B\", north".into(), "total".into()])),
                ("pass".into(), Column::Count(vec![Some(120), None, None])),
                ("deny".into(), Column::Count(vec![Some(7), Some(9), Some(16)])),
            ],
        }
    }

    #[test]
    fn csv_keeps_suppressed_counts_empty_and_quotes_text() {
        assert_eq!(
            sheet().to_csv(),
            "checkpoint,pass,deny\r\nCP-A,120,7\r\n\"CP-\"\"B\"\", north\",,9\r\ntotal,,16\r\n"
        );
    }

    #[test]
    fn formats_name_what_is_accepted() {
        assert_eq!(ExportFormat::parse(None), Ok(ExportFormat::Json));
        assert_eq!(ExportFormat::parse(Some("csv")), Ok(ExportFormat::Csv));
        let err = ExportFormat::parse(Some("xlsx")).unwrap_err();
        assert!(err.contains("json, csv"), "{err}");
        let parquet = ExportFormat::parse(Some("parquet"));
        if ExportFormat::PARQUET_BUILT {
            assert_eq!(parquet, Ok(ExportFormat::Parquet));
        } else {
            assert!(parquet.unwrap_err().contains("--features parquet"));
        }
    }

    /// The file read back with the crate's own reader: the same cells, a suppressed count a null.
    #[cfg(feature = "parquet")]
    #[test]
    fn parquet_round_trips_with_nulls_for_suppressed_counts() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::record::Field;
        let bytes = sheet().to_parquet().unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
        let rows: Vec<Vec<(String, Field)>> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap().get_column_iter().map(|(n, f)| (n.clone(), f.clone())).collect())
            .collect();
        assert_eq!(rows[0][0], ("checkpoint".to_string(), Field::Str("CP-A".into())));
        assert_eq!(rows[0][1], ("pass".to_string(), Field::Long(120)));
        assert_eq!(rows[1][0].1, Field::Str("CP-\"B\", north".into()));
        assert_eq!(rows[1][1], ("pass".to_string(), Field::Null));
        assert_eq!(rows[2][2], ("deny".to_string(), Field::Long(16)));
    }
}
