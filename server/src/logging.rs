//! Log and audit lines: how they are formatted and how they are written.
//!
//! Audit lines are written on every request, so both halves are built for
//! the request path; a warm issuance costs about 45 µs of server CPU, and
//! tracing-subscriber's default text format plus a channel to a writer thread
//! cost 6 µs of it (BENCHMARKS.md).
//!
//! **Format.** [`TextFormat`] writes the same lines as tracing-subscriber's
//! default (`2026-11-28T07:50:00.123456Z  INFO tessera::audit: event="token_issued" client_id=svc …`)
//! with plain string pushes instead of layers of `fmt` machinery, and without
//! colour. It also escapes control characters in every value, not only in
//! the message: a client id is the caller's text, and a newline in it must not
//! forge a second audit line, nor an escape sequence repaint a terminal.
//!
//! **Writing.** With the background writer ([`background`]), the request
//! thread appends the formatted line to a shared buffer, and wakes the
//! writer thread only when a batch of `BATCH` bytes (about 100 lines) has
//! gathered; otherwise the writer wakes by itself every `FLUSH_EVERY`. So
//! under load there is one wake-up and one `write` per hundred lines instead
//! of one per line (tracing-appender's channel), and a quiet server's line
//! appears within 50 ms. Two designs were measured against this one
//! (BENCHMARKS.md): the per-line channel costs ~2 µs more per warm issuance;
//! a writer waking on a 2 ms timer saved those 2 µs but multiplied the warm
//! p99 under an argon2 flood by five.
//!
//! Nothing is dropped: when the buffer holds `HIGH_WATER` bytes (the output
//! is stalled), request threads wait for the writer. Lines may be lost only to
//! `kill -9`, at most 50 ms worth; `--log-blocking` writes each line before
//! the answer instead.

use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Installs the log subscriber on stderr, at the level `RUST_LOG` names
/// (default `info`). With `background`, lines are written by the batching
/// writer thread, and the returned guard flushes every line when dropped;
/// without it, each line is written before the call that logs it returns.
pub fn init(format: LogFormat, background: bool) -> Option<BackgroundLogGuard> {
    fn install<W>(format: LogFormat, writer: W)
    where
        W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(false);
        let _ = match format {
            LogFormat::Text => builder.event_format(TextFormat).try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
    }
    if background {
        let (writer, guard) = self::background(std::io::stderr());
        install(format, writer);
        Some(guard)
    } else {
        install(format, std::io::stderr);
        None
    }
}

/// tracing-subscriber's default text lines, written cheaply and with every
/// value's control characters escaped (see the module comment).
#[derive(Debug, Clone, Copy, Default)]
pub struct TextFormat;

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // Lines from the `log` crate (dependencies) arrive as events of
        // target "log"; their real target and level are in their fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(match *meta.level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        })?;
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>().filter(|f| !f.is_empty()) {
                    write!(Escaped(&mut writer), "{{{fields}}}")?;
                }
                writer.write_char(':')?;
                any = true;
            }
            if any {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = FieldWriter {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// `2026-11-28T07:50:00.123456Z`, UTC, as tracing-subscriber writes it.
fn write_timestamp(out: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    fn digits(slot: &mut [u8], mut value: u64) {
        for byte in slot.iter_mut().rev() {
            *byte = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    digits(&mut text[0..4], year);
    digits(&mut text[5..7], month);
    digits(&mut text[8..10], day);
    digits(&mut text[11..13], seconds % 86_400 / 3_600);
    digits(&mut text[14..16], seconds % 3_600 / 60);
    digits(&mut text[17..19], seconds % 60);
    digits(&mut text[20..26], u64::from(since_epoch.subsec_micros()));
    // Only ASCII digits and punctuation were written.
    out.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Writes `name=value` pairs separated by spaces; `message` bare; strings
/// quoted; control characters escaped in all of them.
struct FieldWriter<'a, 'w> {
    out: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl FieldWriter<'_, '_> {
    /// The separator and `name=`, or nothing for the message; `false` for a
    /// field not to be written (the `log` crate's metadata, shown already).
    fn begin(&mut self, field: &Field) -> Result<bool, fmt::Error> {
        let name = field.name();
        if name.starts_with("log.") {
            return Ok(false);
        }
        if !std::mem::take(&mut self.first) {
            self.out.write_char(' ')?;
        }
        if name != "message" {
            self.out.write_str(name.strip_prefix("r#").unwrap_or(name))?;
            self.out.write_char('=')?;
        }
        Ok(true)
    }

    fn record(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = match self.begin(field) {
                Ok(true) => value(self.out),
                other => other.map(|_| ()),
            };
        }
    }
}

impl Visit for FieldWriter<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let quoted = field.name() != "message";
        self.record(field, |out| {
            if quoted {
                out.write_char('"')?;
                write_escaped(out, value, true)?;
                out.write_char('"')
            } else {
                write_escaped(out, value, false)
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, |out| out.write_str(if value { "true" } else { "false" }));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record(field, |out| {
            write!(Escaped(&mut *out), "{value}")?;
            let mut source = value.source();
            while let Some(cause) = source {
                write!(Escaped(&mut *out), ": {cause}")?;
                source = cause.source();
            }
            Ok(())
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here too, formatted with `Display`.
        self.record(field, |out| write!(Escaped(out), "{value:?}"));
    }
}

/// Writes `text` with control characters escaped (`\n`, `\u{1b}`), and with
/// `quoted`, `"` and `\` escaped as well, as Rust's `Debug` for strings does.
fn write_escaped<W: fmt::Write + ?Sized>(out: &mut W, text: &str, quoted: bool) -> fmt::Result {
    let plain = |b: u8| b >= 0x20 && b != 0x7f && b != 0xc2 && !(quoted && (b == b'"' || b == b'\\'));
    if text.bytes().all(plain) {
        return out.write_str(text);
    }
    for c in text.chars() {
        if c.is_control() || (quoted && (c == '"' || c == '\\')) {
            for escaped in c.escape_debug() {
                out.write_char(escaped)?;
            }
        } else {
            out.write_char(c)?;
        }
    }
    Ok(())
}

/// A `fmt::Write` that escapes control characters in whatever is written
/// through it.
struct Escaped<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_escaped(&mut *self.0, text, false)
    }
}

/// Bytes that make a batch worth waking the writer for (about 100 lines).
const BATCH: usize = 16 << 10;
/// How long a line may wait for a batch to fill before it is written anyway.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Buffered bytes past which request threads wait for the writer.
const HIGH_WATER: usize = 8 << 20;

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    writer_idle: bool,
    producers_waiting: usize,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    writer_wake: Condvar,
    producer_wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding this lock cannot leave the buffer torn in a way
        // that matters more than losing logs, so keep going.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `MakeWriter` handed to `tracing_subscriber`; cheap to clone.
#[derive(Clone)]
pub struct BackgroundLog {
    shared: Arc<Shared>,
}

/// Flushes every buffered line and stops the writer thread when dropped.
pub struct BackgroundLogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `output`.
pub fn background<W: Write + Send + 'static>(output: W) -> (BackgroundLog, BackgroundLogGuard) {
    let shared = Arc::new(Shared::default());
    let writer_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("tessera-log".into())
        .spawn(move || write_loop(&writer_shared, output))
        .ok();
    let log = BackgroundLog {
        shared: Arc::clone(&shared),
    };
    if thread.is_none() {
        // No thread: behave as --log-blocking would rather than lose lines.
        shared.lock().closed = true;
    }
    (log, BackgroundLogGuard { shared, thread })
}

fn write_loop<W: Write>(shared: &Shared, mut output: W) {
    let mut batch = Vec::with_capacity(64 << 10);
    loop {
        {
            let mut pending = shared.lock();
            while pending.lines.len() < BATCH && !pending.closed {
                pending.writer_idle = true;
                let (guard, waited) = shared
                    .writer_wake
                    .wait_timeout(pending, FLUSH_EVERY)
                    .unwrap_or_else(PoisonError::into_inner);
                pending = guard;
                if waited.timed_out() {
                    break;
                }
            }
            pending.writer_idle = false;
            if pending.lines.is_empty() {
                if pending.closed {
                    break;
                }
                continue;
            }
            std::mem::swap(&mut pending.lines, &mut batch);
            if pending.producers_waiting > 0 {
                shared.producer_wake.notify_all();
            }
        }
        // A failed write (a closed stderr) has nowhere to be reported.
        let _ = output.write_all(&batch).and_then(|()| output.flush());
        batch.clear();
        if batch.capacity() > HIGH_WATER {
            batch = Vec::with_capacity(64 << 10);
        }
    }
    let _ = output.flush();
}

impl Drop for BackgroundLogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.writer_wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::io::Write for BackgroundLog {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        if pending.closed {
            // After shutdown (or without a writer thread), write directly.
            drop(pending);
            return std::io::stderr().write(line);
        }
        while pending.lines.len() >= HIGH_WATER && !pending.closed {
            pending.producers_waiting += 1;
            pending = self
                .shared
                .producer_wake
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
            pending.producers_waiting -= 1;
        }
        pending.lines.extend_from_slice(line);
        if pending.writer_idle && pending.lines.len() >= BATCH {
            // Only an idle writer needs waking; a busy or pausing one will
            // find the line when it next takes the buffer.
            pending.writer_idle = false;
            self.shared.writer_wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BackgroundLog {
    type Writer = BackgroundLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read after the writer is done.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines a subscriber with [`TextFormat`] writes while `emit` runs.
    fn text_lines(emit: impl FnOnce()) -> String {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(TextFormat)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn an_audit_line_reads_as_tracing_subscribers_default_text_format() {
        let text = text_lines(|| {
            tracing::info!(target: "tessera::audit", event = "token_issued", client_id = %"svc", expires_in = 300u32, cached = false);
        });
        let (timestamp, rest) = text.split_at(27);
        assert!(timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T', "{text:?}");
        assert_eq!(
            rest,
            "  INFO tessera::audit: event=\"token_issued\" client_id=svc expires_in=300 cached=false\n"
        );
    }

    #[test]
    fn a_newline_or_escape_in_a_value_cannot_forge_a_line_or_repaint_a_terminal() {
        let hostile = "svc\n2026-11-28T00:00:00.000000Z  INFO tessera::audit: event=\"token_revoked\"\u{1b}[2J";
        let text = text_lines(|| {
            tracing::warn!(target: "tessera::audit", event = "client_authentication_failed", client_id = %hostile, quoted = hostile);
            tracing::warn!("a message with {hostile}");
        });
        assert_eq!(text.lines().count(), 2, "one line per event: {text:?}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains(r#"client_id=svc\n2026"#), "{text:?}");
        assert!(
            text.contains(
                r#"quoted="svc\n2026-11-28T00:00:00.000000Z  INFO tessera::audit: event=\"token_revoked\"\u{1b}[2J""#
            ),
            "{text:?}"
        );
    }

    #[test]
    fn timestamps_are_utc_rfc_3339_with_microseconds() {
        let mut text = String::new();
        let at = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        write_timestamp(&mut text, at).unwrap();
        assert_eq!(text, "2023-11-14T22:13:20.123456Z");
        text.clear();
        write_timestamp(&mut text, UNIX_EPOCH + Duration::from_secs(951_782_400)).unwrap();
        assert_eq!(text, "2000-02-29T00:00:00.000000Z", "a leap day");
        text.clear();
        write_timestamp(&mut text, UNIX_EPOCH).unwrap();
        assert_eq!(text, "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn every_line_from_every_thread_is_written_whole_and_in_order_per_thread() {
        let captured = Captured::default();
        let (log, guard) = background(captured.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        log.write_all(format!("thread={t} line={i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let (t, i) = line
                .strip_prefix("thread=")
                .and_then(|rest| rest.split_once(" line="))
                .unwrap_or_else(|| panic!("torn line: {line:?}"));
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t} out of order");
            next[t] += 1;
        }
        assert_eq!(next, [5_000; 4], "lines lost");
    }

    #[test]
    fn a_line_on_a_quiet_log_is_written_without_waiting_for_shutdown() {
        let captured = Captured::default();
        let (mut log, _guard) = background(captured.clone());
        log.write_all(b"one line\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while captured.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(&*captured.0.lock().unwrap(), b"one line\n");
    }
}
