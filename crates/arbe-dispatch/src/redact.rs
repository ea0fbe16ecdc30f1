//! Redaction: every resolved secret value in tool output or a model message becomes
//! `[redacted:NAME]` before it is stored or streamed, including values split across chunks.

use arbe_core::{SecretName, SecretValue};

/// Replaces secret values with `[redacted:NAME]`. Longest values first, so a value that
/// contains another is replaced whole.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<(Vec<u8>, Vec<u8>)>,
    longest: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").field("secrets", &self.secrets.len()).finish()
    }
}

impl Redactor {
    /// A redactor for these values.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a SecretName, &'a SecretValue)>) -> Self {
        let mut redactor = Self::default();
        for (name, value) in secrets {
            redactor.add(name.as_str(), value);
        }
        redactor
    }

    /// Adds a value, replaced by `[redacted:NAME]` (a model key, say).
    pub fn add(&mut self, name: &str, value: &SecretValue) {
        let bytes = value.expose().as_bytes();
        if bytes.is_empty() || self.secrets.iter().any(|(v, _)| v == bytes) {
            return;
        }
        self.secrets.push((bytes.to_vec(), format!("[redacted:{name}]").into_bytes()));
        self.secrets.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        self.longest = self.secrets[0].0.len();
    }

    /// `text` with every value replaced.
    pub fn redact(&self, text: &str) -> String {
        if self.secrets.is_empty() {
            return text.to_owned();
        }
        String::from_utf8_lossy(&self.redact_bytes(text.as_bytes())).into_owned()
    }

    fn redact_bytes(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        let mut i = 0;
        'outer: while i < input.len() {
            for (value, marker) in &self.secrets {
                if input[i..].starts_with(value) {
                    out.extend_from_slice(marker);
                    i += value.len();
                    continue 'outer;
                }
            }
            out.push(input[i]);
            i += 1;
        }
        out
    }

    /// A streaming redactor over this one's values.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor { redactor: self.clone(), pending: Vec::new() }
    }
}

/// Redacts a stream of chunks. It holds back the end of what it has seen when that end could be
/// the start of a value (and any cut UTF-8 character) until more arrive, so a value split across
/// chunks is still found while ordinary output flows at once.
pub struct StreamRedactor {
    redactor: Redactor,
    pending: Vec<u8>,
}

impl std::fmt::Debug for StreamRedactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The held-back bytes may be part of a value: their count only.
        f.debug_struct("StreamRedactor").field("held_back", &self.pending.len()).finish()
    }
}

impl StreamRedactor {
    /// Takes a chunk; returns the text that is safe to emit now.
    pub fn push(&mut self, chunk: &[u8]) -> String {
        self.pending.extend_from_slice(chunk);
        let hold = self.hold_back();
        if self.pending.len() <= hold {
            return String::new();
        }
        // Only a suffix that could be the start of a value is held back. So any value starting
        // before `cut` lies wholly inside `pending`, and redacting the buffer and emitting up
        // to `cut` never emits part of a value.
        let mut cut = self.pending.len() - hold;
        // Scan values that start before `cut`; one that starts there may extend past it.
        let mut out = Vec::with_capacity(cut);
        let mut i = 0;
        'outer: while i < cut {
            for (value, marker) in &self.redactor.secrets {
                if self.pending[i..].starts_with(value) {
                    out.extend_from_slice(marker);
                    i += value.len();
                    continue 'outer;
                }
            }
            out.push(self.pending[i]);
            i += 1;
        }
        cut = i.max(cut);
        // Do not split a UTF-8 character: keep its start for the next chunk.
        let mut keep_from = out.len();
        let tail = out.len().saturating_sub(3);
        for j in (tail..out.len()).rev() {
            let b = out[j];
            if b & 0xC0 == 0x80 {
                continue;
            }
            if b >= 0xC0 {
                let width = if b >= 0xF0 {
                    4
                } else if b >= 0xE0 {
                    3
                } else {
                    2
                };
                if out.len() - j < width {
                    keep_from = j;
                }
            }
            break;
        }
        let carried = out.split_off(keep_from);
        let mut rest = carried;
        rest.extend_from_slice(&self.pending[cut..]);
        self.pending = rest;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The length of the longest suffix of `pending` that is a proper prefix of some value.
    fn hold_back(&self) -> usize {
        let len = self.pending.len();
        let max = self.redactor.longest.saturating_sub(1).min(len);
        (1..=max)
            .rev()
            .find(|&k| {
                let suffix = &self.pending[len - k..];
                self.redactor.secrets.iter().any(|(value, _)| value.len() > k && value.starts_with(suffix))
            })
            .unwrap_or(0)
    }

    /// Everything still held back, redacted.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        String::from_utf8_lossy(&self.redactor.redact_bytes(&rest)).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        let names = [SecretName::parse("API_KEY").unwrap(), SecretName::parse("TOKEN").unwrap()];
        let values = [SecretValue::new("sk-abc123".into()).unwrap(), SecretValue::new("tok".into()).unwrap()];
        Redactor::new(names.iter().zip(values.iter()))
    }

    #[test]
    fn debug_never_shows_values_or_held_back_bytes() {
        let mut s = redactor().stream();
        assert_eq!(s.push(b"x sk-abc"), "x ");
        let debug = format!("{:?} {:?}", s, redactor());
        assert!(!debug.contains("sk-abc") && !debug.contains("tok"), "{debug}");
    }

    #[test]
    fn whole_text_is_redacted() {
        let r = redactor();
        assert_eq!(r.redact("key=sk-abc123 and tok."), "key=[redacted:API_KEY] and [redacted:TOKEN].");
        assert_eq!(Redactor::default().redact("sk-abc123"), "sk-abc123");
    }

    #[test]
    fn output_that_cannot_start_a_value_is_not_held_back() {
        let mut s = redactor().stream();
        assert_eq!(s.push(b"started\n"), "started\n");
        assert_eq!(s.push(b"then sk-a"), "then ");
        assert_eq!(s.push(b"bc123!"), "[redacted:API_KEY]!");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn values_split_at_every_boundary_are_redacted() {
        let r = redactor();
        let text = "é start sk-abc123 middle ✓ tok end sk-abc12";
        let want = r.redact(text);
        assert!(!want.contains("sk-abc123"));
        let bytes = text.as_bytes();
        for size in 1..=bytes.len() {
            let mut s = r.stream();
            let mut got = String::new();
            for chunk in bytes.chunks(size) {
                got.push_str(&s.push(chunk));
            }
            got.push_str(&s.finish());
            assert_eq!(got, want, "chunk size {size}");
        }
        // Two-way split at every position.
        for at in 0..=bytes.len() {
            let mut s = r.stream();
            let mut got = s.push(&bytes[..at]);
            got.push_str(&s.push(&bytes[at..]));
            got.push_str(&s.finish());
            assert_eq!(got, want, "split at {at}");
        }
    }
}
