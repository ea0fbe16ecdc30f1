//! A small Server-Sent Events parser over a byte stream: `event:` and `data:` fields, multi-line
//! data, `\n` or `\r\n` line ends, and comment lines (`: OPENROUTER PROCESSING`, keep-alives)
//! skipped. Model providers' streams (arbe-llm) and arbe's own entry tails (arbe-client) are
//! read with it. No I/O: bytes in, events out.

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, empty when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// The largest event (its unfinished line and data lines together) the parser holds: a peer
/// cannot make the control plane buffer more by never ending a line or an event.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// An event grew past [`MAX_EVENT_BYTES`].
#[derive(Debug, PartialEq, Eq)]
pub struct Oversized;

/// Feeds bytes in, takes whole events out.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no line end.
    scanned: usize,
    event: String,
    data: Vec<String>,
    data_bytes: usize,
}

impl Parser {
    /// Adds bytes; returns the events they completed, or `Oversized` once an event outgrows
    /// [`MAX_EVENT_BYTES`]. Each byte is scanned once for a line end.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, Oversized> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buf[self.scanned..].iter().position(|b| *b == b'\n').map(|at| self.scanned + at) {
            self.scanned = 0;
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    events.push(Event { event: std::mem::take(&mut self.event), data: self.data.join("\n") });
                    self.data.clear();
                    self.data_bytes = 0;
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = value.to_owned(),
                "data" => {
                    self.data_bytes += value.len() + 1;
                    self.data.push(value.to_owned());
                }
                _ => {}
            }
        }
        self.scanned = self.buf.len();
        if self.buf.len() + self.data_bytes > MAX_EVENT_BYTES {
            return Err(Oversized);
        }
        Ok(events)
    }

    /// Whether bytes or fields of an unfinished event are left over.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || !self.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_that_never_ends_is_refused_once_it_outgrows_the_cap() {
        let mut parser = Parser::default();
        let line = vec![b'x'; 64 * 1024];
        let mut pushed = 0;
        let refused = loop {
            match parser.push(&line) {
                Ok(events) => assert!(events.is_empty()),
                Err(Oversized) => break pushed,
            }
            pushed += line.len();
            assert!(pushed <= MAX_EVENT_BYTES, "still buffering after {pushed} bytes");
        };
        assert!(refused + line.len() > MAX_EVENT_BYTES);
        // Many data lines of one event count too.
        let mut parser = Parser::default();
        let mut data = b"data: ".to_vec();
        data.extend(vec![b'y'; 64 * 1024]);
        data.push(b'\n');
        let mut result = Ok(vec![]);
        for _ in 0..=MAX_EVENT_BYTES / data.len() + 1 {
            result = parser.push(&data);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(Oversized));
    }

    #[test]
    fn parses_events_split_anywhere_and_skips_comments() {
        let stream = b": OPENROUTER PROCESSING\r\n\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n";
        for split in 0..stream.len() {
            let mut parser = Parser::default();
            let mut events = parser.push(&stream[..split]).unwrap();
            events.extend(parser.push(&stream[split..]).unwrap());
            assert_eq!(
                events,
                vec![
                    Event { event: "message_start".into(), data: "{\"a\":1}".into() },
                    Event { event: String::new(), data: "line1\nline2".into() },
                    Event { event: String::new(), data: "[DONE]".into() },
                ],
                "split at {split}"
            );
            assert!(!parser.has_partial());
        }
    }
}
