//! Test helpers every crate's tests share (feature `testkit`).

use crate::{Classify, ErrorKind};

/// Asserts `res` failed with `kind` and returns the error, so a test can also check its message.
#[track_caller]
pub fn assert_kind<T: std::fmt::Debug, E: Classify>(res: Result<T, E>, kind: ErrorKind) -> E {
    match res {
        Ok(v) => panic!("expected {kind}, got Ok({v:?})"),
        Err(err) => {
            assert_eq!(err.kind(), kind, "{err}");
            err
        }
    }
}
