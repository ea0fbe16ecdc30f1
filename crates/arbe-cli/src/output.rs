//! Where output goes: data (tables, ids, `--json`) to stdout; notes, hints, warnings and the
//! spinner to stderr. Colour only on a terminal and never with `NO_COLOR`. A closed stdout (a
//! pipe into `head`) ends the program successfully.

use std::{
    io::{IsTerminal, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use serde::Serialize;

/// A colour or weight for a piece of text.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Style {
    /// Less important.
    Dim,
    /// Headers, names.
    Bold,
    /// Success.
    Green,
    /// Failure.
    Red,
    /// Attention.
    Yellow,
    /// Commands.
    Cyan,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Self::Dim => "2",
            Self::Bold => "1",
            Self::Green => "32",
            Self::Red => "31",
            Self::Yellow => "33",
            Self::Cyan => "36",
        }
    }
}

/// Prints a command's output.
#[derive(Clone, Debug)]
pub(crate) struct Printer {
    /// `--json`: stdout gets JSON only.
    pub(crate) json: bool,
    color_out: bool,
    color_err: bool,
    spin: bool,
}

impl Printer {
    /// A printer for `--json` or not, with colour where the terminal allows it.
    pub(crate) fn new(json: bool, no_color: bool) -> Self {
        let err_tty = std::io::stderr().is_terminal();
        Self {
            json,
            color_out: !no_color && std::io::stdout().is_terminal(),
            color_err: !no_color && err_tty,
            spin: err_tty && !json,
        }
    }

    /// `text` in `style` on stdout, if stdout shows colour.
    pub(crate) fn paint(&self, style: Style, text: &str) -> String {
        paint(self.color_out, style, text)
    }

    /// `text` in `style` on stderr, if stderr shows colour.
    pub(crate) fn paint_err(&self, style: Style, text: &str) -> String {
        paint(self.color_err, style, text)
    }

    /// Bytes on stdout, as they are.
    pub(crate) fn raw(&self, bytes: &[u8]) {
        out(format_args!("{}", String::from_utf8_lossy(bytes)));
    }

    /// A line on stdout.
    pub(crate) fn line(&self, text: &str) {
        out(format_args!("{text}\n"));
    }

    /// `value` as pretty JSON on stdout.
    pub(crate) fn json<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value).expect("wire types serialize");
        out(format_args!("{text}\n"));
    }

    /// `value` as one line of JSON on stdout (a stream of entries).
    pub(crate) fn json_line<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string(value).expect("wire types serialize");
        out(format_args!("{text}\n"));
    }

    /// Rows under headers, columns aligned; `empty` goes to stderr when there are no rows.
    pub(crate) fn table(&self, headers: &[&str], rows: &[Vec<String>], empty: &str) {
        if rows.is_empty() {
            self.note(empty);
            return;
        }
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let render = |cells: Vec<String>, style: Option<Style>| {
            let last = cells.len() - 1;
            let mut line = String::new();
            for (i, cell) in cells.into_iter().enumerate() {
                let pad = if i == last { 0 } else { widths[i] - cell.chars().count() + 2 };
                let cell = match style {
                    Some(style) => self.paint(style, &cell),
                    None => cell,
                };
                line.push_str(&cell);
                line.push_str(&" ".repeat(pad));
            }
            line
        };
        self.line(&render(headers.iter().map(|h| (*h).to_owned()).collect(), Some(Style::Bold)));
        for row in rows {
            self.line(&render(row.clone(), None));
        }
    }

    /// `label: value` lines, labels aligned.
    pub(crate) fn fields(&self, fields: &[(&str, String)]) {
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in fields {
            let label = format!("{key}:{}", " ".repeat(width - key.len()));
            self.line(&format!("{} {value}", self.paint(Style::Dim, &label)));
        }
    }

    /// A note on stderr.
    pub(crate) fn note(&self, text: &str) {
        err(format_args!("{text}\n"));
    }

    /// A `hint:` line on stderr.
    pub(crate) fn hint(&self, text: &str) {
        err(format_args!("{} {text}\n", self.paint_err(Style::Cyan, "hint:")));
    }

    /// A `warning:` line on stderr.
    pub(crate) fn warn(&self, text: &str) {
        err(format_args!("{} {text}\n", self.paint_err(Style::Yellow, "warning:")));
    }

    /// An `error:` line on stderr.
    pub(crate) fn error(&self, text: &str) {
        err(format_args!("{} {text}\n", self.paint_err(Style::Red, "error:")));
    }

    /// A spinner on stderr saying `message` until dropped; nothing unless stderr is a terminal.
    pub(crate) fn spinner(&self, message: &str) -> Option<Spinner> {
        self.spin.then(|| Spinner::start(message.to_owned()))
    }
}

fn paint(on: bool, style: Style, text: &str) -> String {
    if on { format!("\x1b[{}m{text}\x1b[0m", style.code()) } else { text.to_owned() }
}

/// Writes to stdout; a reader that went away ends the program with success.
fn out(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

fn err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// A spinner drawn on stderr by a thread of its own; dropping it clears the line.
#[derive(Debug)]
pub(crate) struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    fn start(message: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                err(format_args!("\r{} {message}", FRAMES[i % FRAMES.len()]));
                i += 1;
                std::thread::sleep(Duration::from_millis(80));
            }
            err(format_args!("\r\x1b[2K"));
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
