//! The one paging rule of every list, in the API and on the pages: a [`Page`] is a
//! `limit` (how many rows, 1 to [`Page::MAX_LIMIT`], [`Page::DEFAULT_LIMIT`] when not
//! given) and an `offset` (how many rows to skip, 0 or more); a list answers with a
//! [`Paged`]: the rows of the page and the total of rows matching the same filter, so a
//! client or a person knows how many pages there are.
//!
//! The maximum is the largest page any list accepted before lists were paged alike (the
//! payments queue took 500), so no request that worked is refused now.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    limit: i64,
    offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("must be a whole number")]
    NotInteger,
    #[error("must be from 1 to {}", Page::MAX_LIMIT)]
    LimitOutOfRange,
    #[error("must be 0 or more")]
    NegativeOffset,
}

impl PageError {
    /// The rule broken, for clients (see [`crate::validation::Rule`]).
    pub fn rule(&self) -> &'static str {
        match self {
            Self::NotInteger => "integer",
            Self::LimitOutOfRange | Self::NegativeOffset => "range",
        }
    }
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl Page {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 500;

    /// The `limit` parameter as typed; absent is the default.
    pub fn parse_limit(text: Option<&str>) -> Result<i64, PageError> {
        let Some(text) = text else {
            return Ok(Self::DEFAULT_LIMIT);
        };
        let limit: i64 = text.trim().parse().map_err(|_| PageError::NotInteger)?;
        if (1..=Self::MAX_LIMIT).contains(&limit) {
            Ok(limit)
        } else {
            Err(PageError::LimitOutOfRange)
        }
    }

    /// The `offset` parameter as typed; absent is the first page.
    pub fn parse_offset(text: Option<&str>) -> Result<i64, PageError> {
        let Some(text) = text else {
            return Ok(0);
        };
        let offset: i64 = text.trim().parse().map_err(|_| PageError::NotInteger)?;
        if offset >= 0 {
            Ok(offset)
        } else {
            Err(PageError::NegativeOffset)
        }
    }

    pub fn new(limit: i64, offset: i64) -> Result<Self, PageError> {
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(PageError::LimitOutOfRange);
        }
        if offset < 0 {
            return Err(PageError::NegativeOffset);
        }
        Ok(Self { limit, offset })
    }

    /// The `number`th page (from 1) of `limit` rows, as the pages link them; a number
    /// below 1 is the first page.
    pub fn numbered(number: i64, limit: i64) -> Result<Self, PageError> {
        Self::new(limit, number.max(1).saturating_sub(1).saturating_mul(limit))
    }

    pub fn limit(self) -> i64 {
        self.limit
    }

    pub fn offset(self) -> i64 {
        self.offset
    }

    /// The page after this one, if rows remain beyond it.
    pub fn next(self, total: i64) -> Option<Self> {
        let offset = self.offset.saturating_add(self.limit);
        (offset < total).then_some(Self { offset, ..self })
    }

    /// The page before this one, if this is not the first.
    pub fn previous(self) -> Option<Self> {
        (self.offset > 0).then(|| Self {
            offset: (self.offset - self.limit).max(0),
            ..self
        })
    }

    /// This page's number, from 1 (a page that starts mid-way counts as the one it
    /// starts in).
    pub fn number(self) -> i64 {
        self.offset / self.limit + 1
    }

    /// How many pages `total` rows fill; an empty list still has its one (empty) page.
    pub fn count_of_pages(self, total: i64) -> i64 {
        ((total + self.limit - 1) / self.limit).max(1)
    }
}

/// One page of a list and how many rows the whole list (with the same filter) has.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
}

impl<T> Paged<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
        }
    }

    /// The page with each row converted, or the first row that would not convert.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Paged<U>, E> {
        Ok(Paged {
            items: self.items.into_iter().map(f).collect::<Result<_, E>>()?,
            total: self.total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_has_a_default_and_bounds() {
        assert_eq!(Page::parse_limit(None), Ok(50));
        assert_eq!(Page::parse_limit(Some("500")), Ok(500));
        assert_eq!(
            Page::parse_limit(Some("0")),
            Err(PageError::LimitOutOfRange)
        );
        assert_eq!(
            Page::parse_limit(Some("501")),
            Err(PageError::LimitOutOfRange)
        );
        assert_eq!(Page::parse_limit(Some("ten")), Err(PageError::NotInteger));
        assert_eq!(
            Page::parse_offset(Some("-1")),
            Err(PageError::NegativeOffset)
        );
    }

    #[test]
    fn next_and_previous_stay_inside_the_list() {
        let page = Page::new(10, 0).unwrap();
        assert_eq!(page.next(25).map(Page::offset), Some(10));
        assert_eq!(Page::new(10, 20).unwrap().next(25), None);
        assert_eq!(page.previous(), None);
        assert_eq!(
            Page::new(10, 5).unwrap().previous().map(Page::offset),
            Some(0)
        );
        assert_eq!(Page::new(10, 20).unwrap().number(), 3);
        assert_eq!(page.count_of_pages(25), 3);
        assert_eq!(page.count_of_pages(0), 1);
        assert_eq!(Page::numbered(3, 10).unwrap().offset(), 20);
    }
}
