//! Poll-time histograms over time, as an HdrHistogram interval log (`report.hlog`).
//!
//! The format is the standard one that HdrHistogram's Java `HistogramLogProcessor`,
//! HistogramLogAnalyzer and the Python `hdrhistogram` package read:
//!
//! ```text
//! #pollwatch interval log, version 1: values in nanoseconds, Interval_Max in milliseconds
//! #Tags are spawn sites, percent-encoded (see pollwatch_report::hlog::decode_tag)
//! #[StartTime: 1764322003.412 (seconds since epoch)]
//! #[BaseTime: 1764322003.412 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=src/main.rs%3A42%3A5,0.000,1.000,12.583,HISTFAAAAC...
//! 0.000,1.000,12.583,HISTFAAAAD...
//! ```
//!
//! Each interval (one second by default) has one line per site that was polled in it, tagged
//! with the site, and one untagged line with all sites together (the Java processor reads only
//! untagged lines unless given `-tag`). Histograms are V2 compressed, values in nanoseconds
//! from [`LOWEST_NS`](crate::histogram::LOWEST_NS) to
//! [`HIGHEST_NS`](crate::histogram::HIGHEST_NS); timestamps are seconds since `BaseTime`, the
//! time the layer was built.
//!
//! A tag may not contain commas, spaces or colons, and a site label (`file:line:col "name"`)
//! has all three, so tags are site labels percent-encoded: every byte other than ASCII letters,
//! digits and `-._~/` is written `%XX`. [`encode_tag`] and [`decode_tag`] are exact inverses.
//!
//! The log is appended to while the application runs, one whole interval per write. A process
//! that dies mid-write can leave a last line without its newline: [`from_str`] drops such a
//! line and says so in [`Log::truncated_tail`]; any other bad line is an error.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::Histogram;

use crate::error::ReadError;
use crate::histogram;

/// The interval log's file name in a report directory.
pub const FILE: &str = "report.hlog";

/// The first line of every log pollwatch writes.
pub const HEADER: &str =
    "#pollwatch interval log, version 1: values in nanoseconds, Interval_Max in milliseconds";

/// The column legend line, as the Java `HistogramLogWriter` writes it.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// `Interval_Max` is written in milliseconds: values (nanoseconds) divided by this.
const MAX_VALUE_DIVISOR: f64 = 1e6;

/// Encodes a site label as an interval log tag: bytes other than ASCII letters, digits and
/// `-._~/` become `%XX` (upper-case hex).
pub fn encode_tag(label: &str) -> String {
    let mut tag = String::with_capacity(label.len());
    for &b in label.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            tag.push(char::from(b));
        } else {
            let _ = write!(tag, "%{b:02X}");
        }
    }
    tag
}

/// Decodes a tag written by [`encode_tag`] back into the site label.
///
/// # Errors
///
/// A sentence saying what is wrong: a `%` not followed by two hex digits, or bytes that are not
/// UTF-8.
pub fn decode_tag(tag: &str) -> Result<String, String> {
    let bytes = tag.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    format!("tag {tag:?}: `%` at byte {i} is not followed by two hex digits")
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("tag {tag:?} does not decode to UTF-8"))
}

/// Appends intervals to an interval log.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    line: String,
    /// Bytes this writer has written.
    written: u64,
}

impl<W: Write> Writer<W> {
    /// Starts a log on `out`: writes the header, with `base_time` (when the measurements
    /// started) as both `StartTime` and `BaseTime`.
    ///
    /// # Errors
    ///
    /// The error of writing to `out`.
    pub fn start(mut out: W, base_time: SystemTime) -> io::Result<Self> {
        let secs = base_time
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        write!(
            out,
            "{HEADER}\n#Tags are spawn sites, percent-encoded (see pollwatch_report::hlog::decode_tag)\n\
             #[StartTime: {secs:.3} (seconds since epoch)]\n\
             #[BaseTime: {secs:.3} (seconds since epoch)]\n{LEGEND}\n"
        )?;
        out.flush()?;
        Ok(Writer {
            out,
            line: String::new(),
            written: 0,
        })
    }

    /// Continues a log already started on `out`: writes nothing until the next interval.
    pub fn resume(out: W) -> Self {
        Writer {
            out,
            line: String::new(),
            written: 0,
        }
    }

    /// Appends one interval that began `start` after the base time and lasted `length`: one
    /// line per `(site label, histogram)` (empty histograms are skipped), then `all` untagged.
    /// The interval is written with one `write_all` and flushed.
    ///
    /// # Errors
    ///
    /// The error of writing to `out`.
    pub fn interval<'a>(
        &mut self,
        start: Duration,
        length: Duration,
        sites: impl IntoIterator<Item = (&'a str, &'a Histogram<u64>)>,
        all: &Histogram<u64>,
    ) -> io::Result<()> {
        self.begin_interval();
        for (label, h) in sites {
            self.site(start, length, label, h);
        }
        self.end_interval(start, length, all)
    }

    /// Begins an interval written one site at a time ([`Writer::site`], then
    /// [`Writer::end_interval`]), so that only one site's histogram need exist at a time.
    pub fn begin_interval(&mut self) {
        self.line.clear();
    }

    /// Adds one site's line to the interval begun (nothing for an empty histogram): kept in
    /// memory, encoded, until [`Writer::end_interval`].
    pub fn site(&mut self, start: Duration, length: Duration, label: &str, h: &Histogram<u64>) {
        if h.is_empty() {
            return;
        }
        let _ = write!(self.line, "Tag={},", encode_tag(label));
        push_interval(&mut self.line, start, length, h);
    }

    /// Ends the interval begun with `all` untagged, writing it with one `write_all`, flushed.
    ///
    /// # Errors
    ///
    /// The error of writing to `out`.
    pub fn end_interval(
        &mut self,
        start: Duration,
        length: Duration,
        all: &Histogram<u64>,
    ) -> io::Result<()> {
        push_interval(&mut self.line, start, length, all);
        self.out.write_all(self.line.as_bytes())?;
        self.written += self.line.len() as u64;
        self.out.flush()
    }

    /// The bytes of intervals this writer has written (the header not counted).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The writer the log goes to.
    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

fn push_interval(line: &mut String, start: Duration, length: Duration, h: &Histogram<u64>) {
    let max = if h.is_empty() { 0 } else { h.max() };
    // An empty interval still carries a valid (empty) histogram: other readers decode every
    // line.
    let encoded = histogram::encode_v2(h);
    let _ = writeln!(
        line,
        "{:.3},{:.3},{:.3},{encoded}",
        start.as_secs_f64(),
        length.as_secs_f64(),
        max as f64 / MAX_VALUE_DIVISOR
    );
}

/// One histogram of an interval log.
#[derive(Debug, Clone)]
pub struct Interval {
    /// The site label (decoded from the tag); `None` for the all-sites histogram.
    pub site: Option<String>,
    /// Seconds from the log's base time to the start of the interval.
    pub start_s: f64,
    /// The interval's length in seconds.
    pub length_s: f64,
    /// The poll times recorded in the interval, in nanoseconds.
    pub histogram: Histogram<u64>,
}

/// An interval log as read back.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// `StartTime`, seconds since the Unix epoch, when the log has one.
    pub start_time_unix_s: Option<f64>,
    /// Every histogram, in file order.
    pub intervals: Vec<Interval>,
    /// Whether the last line was cut short (no newline) and was left out.
    pub truncated_tail: bool,
}

impl Log {
    /// The site labels that have at least one interval, in order of first appearance.
    pub fn sites(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for label in self.intervals.iter().filter_map(|i| i.site.as_deref()) {
            if !seen.contains(&label) {
                seen.push(label);
            }
        }
        seen
    }

    /// The intervals of one site (`None`: the all-sites histograms), in file order.
    pub fn series<'a>(&'a self, site: Option<&'a str>) -> impl Iterator<Item = &'a Interval> {
        self.intervals
            .iter()
            .filter(move |i| i.site.as_deref() == site)
    }
}

/// Reads an interval log from `path`, or from `path/report.hlog` when `path` is a directory.
///
/// # Errors
///
/// [`ReadError::Io`] when the file cannot be read; the errors of [`from_str`], naming the file.
pub fn read(path: &Path) -> Result<Log, ReadError> {
    let file: PathBuf = if path.is_dir() {
        path.join(FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file).map_err(|source| ReadError::Io {
        path: file.clone(),
        source,
    })?;
    from_bytes(&bytes).map_err(|e| e.with_path(&file))
}

/// Reads an interval log from its text. Never panics.
///
/// # Errors
///
/// [`ReadError::BadLog`] naming the first line that is not a comment, a header, the legend or
/// a valid interval (bad numbers, a bad tag, an undecodable histogram).
pub fn from_str(text: &str) -> Result<Log, ReadError> {
    from_bytes(text.as_bytes())
}

fn from_bytes(bytes: &[u8]) -> Result<Log, ReadError> {
    let mut log = Log::default();
    // A last line without its newline is what a writer killed mid-write leaves.
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..=end],
        None => &bytes[..0],
    };
    log.truncated_tail = complete.len() < bytes.len();
    // One line at a time: HdrHistogram's parser looks for the `.` of a timestamp and the `,`
    // after a tag as far as the input goes, so given the whole file, each comment line would
    // cost a scan of the rest of the file, and a tag could run on across lines.
    for (n, line) in complete.split_inclusive(|&b| b == b'\n').enumerate() {
        read_line(&mut log, line).map_err(|reason| bad(n + 1, reason))?;
    }
    Ok(log)
}

/// Reads one line (with its newline) into `log`: nothing for a comment or the legend.
fn read_line(log: &mut Log, line: &[u8]) -> Result<(), String> {
    for entry in IntervalLogIterator::new(line) {
        match entry {
            Ok(LogEntry::StartTime(t)) => log.start_time_unix_s = Some(t.as_secs_f64()),
            Ok(LogEntry::BaseTime(_)) => {}
            Ok(LogEntry::Interval(i)) => {
                let site = i.tag().map(|tag| decode_tag(tag.as_str())).transpose()?;
                let histogram =
                    histogram::decode(i.encoded_histogram()).map_err(|e| e.to_string())?;
                log.intervals.push(Interval {
                    site,
                    start_s: i.start_timestamp().as_secs_f64(),
                    length_s: i.duration().as_secs_f64(),
                    histogram,
                });
            }
            Err(hdrhistogram::serialization::interval_log::LogIteratorError::ParseError {
                ..
            }) => {
                return Err(
                    "not an interval log line (expected `#` comment, legend, or \
                     [Tag=...,]start,length,max,histogram)"
                        .to_owned(),
                );
            }
        }
    }
    Ok(())
}

fn bad(line: usize, reason: String) -> ReadError {
    ReadError::BadLog {
        path: None,
        line,
        reason,
    }
}
