//! CSV files read record by record, each with the line it starts on: the CLI's imports and the
//! registry's and health authority's pages (a file pasted or picked, previewed before anything is
//! written) read them the same way, and name a bad row by the same line.

use std::io::Read;

/// Why a file cannot be read at all (the CLI's exit code 4; a page's refusal).
#[derive(Debug)]
pub struct Unreadable(pub String);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreadable {}

/// A CSV text sent in a request (the pages, the API): refused, naming `field` and the line,
/// when it holds a control character other than a tab or a line break.
pub fn check_text(field: &str, text: &str) -> crate::AppResult<()> {
    for (i, line) in text.split('\n').enumerate() {
        if let Some(c) = line.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\r')) {
            return Err(crate::AppError::invalid(
                field,
                format!(
                    "line {} holds the control character U+{:04X}; only tabs and line breaks may appear",
                    i + 1,
                    c as u32
                ),
            ));
        }
    }
    Ok(())
}

/// A CSV file read record by record, each with the line it starts on (the header being line 1;
/// a field in quotes may span lines), in raw bytes so that a row that is not UTF-8 or has the
/// wrong number of fields is one rejected row rather than an error of the reader.
///
/// Line numbers: the reader counts every `\n` it consumes. Records end at `\n` only (a `\r`
/// before it is trimmed with the other white space), and a `\n` is appended to the file so that
/// the last record ends like the others; a record that ends with the reader on line `L` and holds
/// `n` line breaks inside quotes began on line `L - 1 - n`. (The csv crate's own record
/// positions count from the end of the previous record, so they drift with CRLF files and blank
/// lines.)
pub struct CsvRows<R: Read> {
    reader: csv::Reader<std::io::Chain<R, &'static [u8]>>,
    headers: csv::StringRecord,
    raw: csv::ByteRecord,
    name: String,
    len: u64,
}

/// The next record of a [`CsvRows`]: its line, and its trimmed fields or why they cannot be read.
pub type Row<'a> = (u64, Result<&'a csv::StringRecord, String>);

impl<R: Read> CsvRows<R> {
    /// Reads the header line of `source` (named `name` in messages, `len` bytes long if known),
    /// which must name every `required` column.
    pub fn new(name: String, source: R, len: u64, required: &[&str]) -> Result<CsvRows<R>, Unreadable> {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(source.chain(&b"\n"[..]));
        let mut csv = CsvRows { reader, headers: csv::StringRecord::new(), raw: csv::ByteRecord::new(), name, len };
        let mut header = csv::StringRecord::new();
        match csv.next(&mut header)? {
            None => return Err(Unreadable(format!("{}: the file is empty; expected a header line", csv.name))),
            Some((_, Err(e))) => return Err(Unreadable(format!("{}: the header line: {e}", csv.name))),
            Some((_, Ok(_))) => {}
        }
        let missing: Vec<_> = required.iter().filter(|c| !header.iter().any(|h| h == **c)).collect();
        if !missing.is_empty() {
            return Err(Unreadable(format!(
                "{}: the header line lacks the column(s) {missing:?}; it has {:?}",
                csv.name,
                header.iter().collect::<Vec<_>>()
            )));
        }
        csv.headers = header;
        Ok(csv)
    }

    pub fn headers(&self) -> &csv::StringRecord {
        &self.headers
    }

    /// The source's length in bytes, as given (for the progress bar).
    pub fn total_bytes(&self) -> u64 {
        self.len
    }

    /// Bytes read so far (for the progress bar).
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte().min(self.len)
    }

    /// Reads the next non-blank record into `row`. `Ok(None)` at the end of the file; `Err` when
    /// the file cannot be read any further (an I/O error).
    pub fn next<'a>(&mut self, row: &'a mut csv::StringRecord) -> Result<Option<Row<'a>>, Unreadable> {
        loop {
            let more = self.reader.read_byte_record(&mut self.raw).map_err(|e| {
                Unreadable(format!("{}: reading stopped after line {}: {e}", self.name, self.reader.position().line()))
            })?;
            if !more {
                return Ok(None);
            }
            // A line of white space only (e.g. a blank line of a CRLF file) is no row.
            if self.raw.len() == 1 && self.raw[0].trim_ascii().is_empty() {
                continue;
            }
            let breaks = self.raw.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
            let line = self.reader.position().line().saturating_sub(1 + breaks).max(1);
            return Ok(Some((line, self.fields(row).map(|()| &*row))));
        }
    }

    /// The raw record's fields, trimmed, into `row`; or why they cannot be read.
    fn fields(&self, row: &mut csv::StringRecord) -> Result<(), String> {
        let expected = self.headers.len();
        if expected > 0 && self.raw.len() != expected {
            return Err(format!(
                "{} fields where the header line has {expected}; a field containing a comma must be in double quotes",
                self.raw.len()
            ));
        }
        row.clear();
        for (i, field) in self.raw.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(s) => row.push_field(s.trim()),
                Err(_) => {
                    let column = self.headers.get(i).map(|h| format!("{h}: ")).unwrap_or_default();
                    return Err(format!("{column}not valid UTF-8 (the file must be saved as UTF-8)"));
                }
            }
        }
        Ok(())
    }
}
