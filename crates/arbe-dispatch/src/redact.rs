//! Redaction: every resolved secret value in tool output or a model message becomes
//! `[redacted:NAME]` before it is stored or streamed, including values split across chunks and
//! values printed base64-, percent-, JSON- or hex-encoded.
//!
//! Two invariants keep redaction from becoming an oracle:
//! - the streaming redactor holds back a fixed number of bytes (the longest pattern's length
//!   less one) whatever they are, so where stored pieces break never depends on how much of a
//!   value the output has matched so far;
//! - values shorter than [`SecretValue::MIN_REDACTED_BYTES`] are not redacted at all (the vault
//!   refuses them for sandboxes), since replacing every occurrence of a short string would spell
//!   it out by where the markers sit.

use aho_corasick::{AhoCorasick, MatchKind};
use arbe_core::{SecretName, SecretValue};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// Replaces secret values, and their encoded forms, with `[redacted:NAME]`: one
/// leftmost-longest automaton over every pattern, so a value that contains another is replaced
/// whole and the cost is linear in the text.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Every pattern (a value or one of its encodings) and the marker that replaces it.
    patterns: Vec<(Zeroizing<Vec<u8>>, usize)>,
    markers: Vec<Vec<u8>>,
    /// The values added, to skip a value added twice.
    values: Vec<Zeroizing<Vec<u8>>>,
    automaton: Option<AhoCorasick>,
    longest: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").field("values", &self.values.len()).field("patterns", &self.patterns.len()).finish()
    }
}

impl Redactor {
    /// A redactor for these values.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a SecretName, &'a SecretValue)>) -> Self {
        let mut redactor = Self::default();
        for (name, value) in secrets {
            redactor.push(name.as_str(), value);
        }
        redactor.build();
        redactor
    }

    /// Adds a value, replaced by `[redacted:NAME]` in every form [`forms`] lists. A value
    /// shorter than [`SecretValue::MIN_REDACTED_BYTES`] is not added (see the module docs);
    /// returns whether it was.
    pub fn add(&mut self, name: &str, value: &SecretValue) -> bool {
        let added = self.push(name, value);
        if added {
            self.build();
        }
        added || value.expose().len() >= SecretValue::MIN_REDACTED_BYTES
    }

    /// Records a value's patterns; the automaton is built by [`Redactor::build`]. Returns
    /// whether the value is new.
    fn push(&mut self, name: &str, value: &SecretValue) -> bool {
        let bytes = value.expose().as_bytes();
        if bytes.len() < SecretValue::MIN_REDACTED_BYTES || self.values.iter().any(|v| v.as_slice() == bytes) {
            return false;
        }
        self.values.push(Zeroizing::new(bytes.to_vec()));
        let marker = self.markers.len();
        self.markers.push(format!("[redacted:{name}]").into_bytes());
        for form in forms(bytes) {
            if !self.patterns.iter().any(|(p, _)| p.as_slice() == form.as_slice()) {
                self.longest = self.longest.max(form.len());
                self.patterns.push((form, marker));
            }
        }
        true
    }

    /// One automaton over every pattern.
    fn build(&mut self) {
        self.automaton = (!self.patterns.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(self.patterns.iter().map(|(p, _)| p.as_slice()))
                .expect("secret patterns are at most 64 KiB each, well inside the automaton's limits")
        });
    }

    /// `text` with every value replaced.
    pub fn redact(&self, text: &str) -> String {
        if self.automaton.is_none() {
            return text.to_owned();
        }
        String::from_utf8_lossy(&self.redact_bytes(text.as_bytes(), text.len()).0).into_owned()
    }

    /// Redacts matches starting before `upto`; returns the output and where the input it
    /// covers ends (past `upto` when a match started before it and ends after).
    fn redact_bytes(&self, input: &[u8], upto: usize) -> (Vec<u8>, usize) {
        let Some(automaton) = &self.automaton else { return (input[..upto].to_vec(), upto) };
        let mut out = Vec::with_capacity(upto);
        let mut at = 0;
        for m in automaton.find_iter(input) {
            if m.start() >= upto {
                break;
            }
            out.extend_from_slice(&input[at..m.start()]);
            out.extend_from_slice(&self.markers[self.patterns[m.pattern().as_usize()].1]);
            at = m.end();
        }
        let end = at.max(upto);
        out.extend_from_slice(&input[at..end]);
        (out, end)
    }

    /// A streaming redactor over this one's values.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor { redactor: self.clone(), pending: Zeroizing::new(Vec::new()) }
    }
}

/// The forms a value is matched in: verbatim; base64 (standard and URL alphabets, at each of the
/// three alignments a value can start at inside encoded data); percent-encoded (upper- and
/// lower-case hex); JSON-escaped; and hex (lower and upper case).
fn forms(value: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut forms = vec![Zeroizing::new(value.to_vec())];
    // Base64 maps each 3-byte group to 4 characters. Inside a longer encoding the value starts
    // at some offset mod 3; the groups wholly inside the value encode the same way whatever
    // surrounds them, so skip 0, 1 or 2 leading bytes and keep whole groups.
    for skip in 0..3 {
        let whole = (value.len() - skip) / 3 * 3;
        if whole >= 6 {
            let part = &value[skip..skip + whole];
            forms.push(Zeroizing::new(STANDARD_NO_PAD.encode(part).into_bytes()));
            forms.push(Zeroizing::new(URL_SAFE_NO_PAD.encode(part).into_bytes()));
        }
    }
    // Percent-encoding: RFC 3986's unreserved bytes kept (what most encoders do), or every byte
    // but letters and digits encoded; upper- or lower-case hex; and the form encoding's `+`.
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    for (keep, upper, plus) in [
        (&unreserved as &dyn Fn(u8) -> bool, true, false),
        (&unreserved, false, false),
        (&unreserved, true, true),
        (&|b: u8| b.is_ascii_alphanumeric(), true, false),
        (&|b: u8| b.is_ascii_alphanumeric(), false, false),
    ] {
        let mut percent = String::with_capacity(value.len() * 3);
        for &b in value {
            match b {
                b' ' if plus => percent.push('+'),
                b if keep(b) => percent.push(b as char),
                b if upper => percent.push_str(&format!("%{b:02X}")),
                b => percent.push_str(&format!("%{b:02x}")),
            }
        }
        if percent.as_bytes() != value {
            forms.push(Zeroizing::new(percent.into_bytes()));
        }
    }
    if let Ok(text) = std::str::from_utf8(value) {
        let json = serde_json::to_string(text).expect("a string serialises");
        forms.push(Zeroizing::new(json.as_bytes()[1..json.len() - 1].to_vec()));
    }
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    forms.push(Zeroizing::new(hex.to_uppercase().into_bytes()));
    forms.push(Zeroizing::new(hex.into_bytes()));
    forms
}

/// Redacts a stream of chunks. It always holds back the last `longest pattern − 1` bytes it has
/// seen (and a cut UTF-8 character), whatever they are, so a value split across chunks is still
/// found and what it emits when never depends on how much of a value the output matched.
pub struct StreamRedactor {
    redactor: Redactor,
    pending: Zeroizing<Vec<u8>>,
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
        let hold = self.redactor.longest.saturating_sub(1);
        if self.pending.len() <= hold {
            return String::new();
        }
        // A match starting before `cut` ends at most `longest` bytes later, inside `pending`,
        // so redacting up to `cut` sees every value that starts there whole.
        let (mut out, cut) = self.redactor.redact_bytes(&self.pending, self.pending.len() - hold);
        // Do not split a UTF-8 character: keep its start for the next chunk.
        let keep_from = utf8_cut(&out);
        let mut rest = Zeroizing::new(out.split_off(keep_from));
        rest.extend_from_slice(&self.pending[cut..]);
        self.pending = rest;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Everything still held back, redacted.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        String::from_utf8_lossy(&self.redactor.redact_bytes(&rest, rest.len()).0).into_owned()
    }

    /// Output was lost between the chunks seen and the next (the reader fell behind): what is
    /// held back is emitted, since no value can continue across the hole.
    pub fn gap(&mut self, lost_bytes: u64) -> String {
        let mut text = self.finish();
        text.push_str(&format!(
            "\n[{lost_bytes} bytes of output dropped: the command wrote faster than it was stored]\n"
        ));
        text
    }
}

/// Where `out` may be cut without splitting a UTF-8 character.
fn utf8_cut(out: &[u8]) -> usize {
    for j in (out.len().saturating_sub(3)..out.len()).rev() {
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
                return j;
            }
        }
        break;
    }
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        let names = [SecretName::parse("API_KEY").unwrap(), SecretName::parse("TOKEN").unwrap()];
        let values =
            [SecretValue::new("sk-abc123".into()).unwrap(), SecretValue::new("tok-tok-tok/+=".into()).unwrap()];
        Redactor::new(names.iter().zip(values.iter()))
    }

    #[test]
    fn debug_never_shows_values_or_held_back_bytes() {
        let mut s = redactor().stream();
        assert_eq!(s.push(b"x sk-abc"), "");
        let debug = format!("{:?} {:?}", s, redactor());
        assert!(!debug.contains("sk-abc") && !debug.contains("tok"), "{debug}");
    }

    #[test]
    fn whole_text_is_redacted() {
        let r = redactor();
        assert_eq!(r.redact("key=sk-abc123 and tok-tok-tok/+=."), "key=[redacted:API_KEY] and [redacted:TOKEN].");
        assert_eq!(Redactor::default().redact("sk-abc123"), "sk-abc123");
    }

    #[test]
    fn short_values_are_not_redacted() {
        let name = SecretName::parse("PIN").unwrap();
        let mut r = Redactor::default();
        assert!(!r.add(name.as_str(), &SecretValue::new("1234567".into()).unwrap()));
        assert_eq!(r.redact("1234567 a b c"), "1234567 a b c");
        assert!(r.add(name.as_str(), &SecretValue::new("12345678".into()).unwrap()));
        assert_eq!(r.redact("x12345678"), "x[redacted:PIN]");
    }

    #[test]
    fn encoded_forms_are_redacted() {
        let value = "pa ss/wo+rd:\"ü\"\n-end";
        let name = SecretName::parse("PW").unwrap();
        let r = Redactor::new([(&name, &SecretValue::new(value.into()).unwrap())]);
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = |s: &[u8]| base64::engine::general_purpose::URL_SAFE.encode(s);
        let mut texts = vec![];
        // Base64 at every alignment, as Basic auth and `base64` print it.
        for prefix in ["", "x", "xy", "x-access-token:"] {
            let plain = format!("{prefix}{value}").into_bytes();
            texts.push(b64(&plain));
            texts.push(b64url(&plain));
        }
        let json = serde_json::to_string(value).unwrap();
        texts.push(json[1..json.len() - 1].to_owned());
        let percent: String = value
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        texts.push(percent.clone());
        texts.push(percent.to_lowercase()); // The value's letters are lower-case already.
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
        texts.push(hex.to_uppercase());
        texts.push(hex);
        for text in texts {
            let out = r.redact(&format!("<{text}>"));
            assert!(out.contains("[redacted:PW]"), "{text} became {out}");
            // What is left of an encoding is at most a group or two at either end.
            assert!(out.len() < text.len(), "{text} became {out}");
        }
    }

    #[test]
    fn values_split_at_every_boundary_are_redacted() {
        let r = redactor();
        let text = "é start sk-abc123 middle ✓ tok-tok-tok/+= end sk-abc12";
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

    /// H1: a right and a wrong guess at a value's next character are emitted in pieces of the
    /// same sizes, chunk by chunk.
    #[test]
    fn what_is_emitted_when_does_not_depend_on_a_guess() {
        let r = redactor();
        let pieces = |guess: &str| {
            let mut s = r.stream();
            let mut sizes = vec![];
            for chunk in [format!("sk-abc{guess}"), "|".into(), "ok\n".into(), "sk-ab".into(), "c1|".into()] {
                sizes.push(s.push(chunk.as_bytes()).len());
            }
            sizes.push(s.finish().len());
            sizes
        };
        assert_eq!(pieces("1"), pieces("9"));
        assert_eq!(pieces("12"), pieces("19"));
    }
}
