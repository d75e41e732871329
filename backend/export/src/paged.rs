//! The entries of a range read a page at a time, whatever the database: each source says how
//! to read the page starting at an index, and where the next page starts.

use crate::ExportError;

/// What one read gave: entries in index order, and the index the next read starts at (at or
/// past the range's end when there is nothing more).
pub(crate) type Page = (Vec<(u64, String)>, u64);

/// An iterator over a range's entries, reading with `fetch` as it goes.
pub(crate) struct Paged<F> {
    next: u64,
    end: u64,
    page: std::vec::IntoIter<(u64, String)>,
    fetch: F,
}

impl<F: FnMut(u64) -> Result<Page, ExportError>> Paged<F> {
    pub(crate) fn new(range: std::ops::Range<u64>, fetch: F) -> Self {
        Self {
            next: range.start,
            end: range.end,
            page: Vec::new().into_iter(),
            fetch,
        }
    }
}

impl<F: FnMut(u64) -> Result<Page, ExportError>> Iterator for Paged<F> {
    type Item = Result<(u64, String), ExportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.page.next() {
                return Some(Ok(entry));
            }
            if self.next >= self.end {
                return None;
            }
            match (self.fetch)(self.next) {
                Ok((entries, next)) => {
                    // A read that does not move on ends the range, rather than loop.
                    self.next = if next > self.next { next } else { self.end };
                    self.page = entries.into_iter();
                }
                Err(e) => {
                    self.next = self.end;
                    return Some(Err(e));
                }
            }
        }
    }
}
