//! Borrowed lists: properties, subscriptions, topic filters, reason codes.
//!
//! A decoded list is the validated wire bytes, parsed again item by item as it is iterated,
//! so decoding allocates nothing and a packet of any length is a fixed-size view. A list to
//! encode is a slice of items. Both can be combined: the broker forwards the wire bytes of a
//! PUBLISH's properties and appends the ones it sets itself.

use core::fmt;
use core::marker::PhantomData;

use crate::DecodeError;
use crate::read::Reader;

/// One element of a [`List`]: something with a wire form that can be re-read from bytes
/// the decoder has already validated.
pub trait ListItem<'a>: Copy + 'a {
    /// Reads the next item of validated wire bytes; `None` at the end.
    #[doc(hidden)]
    fn next_from(wire: &mut &'a [u8]) -> Option<Self>;
}

/// A list of items: validated wire bytes, then a slice of items.
#[derive(Clone, Copy)]
pub struct List<'a, T> {
    wire: &'a [u8],
    items: &'a [T],
}

impl<'a, T: ListItem<'a>> List<'a, T> {
    /// The empty list.
    pub const EMPTY: Self = Self {
        wire: &[],
        items: &[],
    };

    /// A list of the given items.
    pub const fn new(items: &'a [T]) -> Self {
        Self { wire: &[], items }
    }

    /// The items encoded in `wire`, followed by `items`.
    ///
    /// `wire` must be the wire form of whole items as this crate produced or validated them,
    /// for example [`List::wire`] of a decoded list; bytes that are not are never read past
    /// the first bad item.
    pub const fn with_wire(wire: &'a [u8], items: &'a [T]) -> Self {
        Self { wire, items }
    }

    /// The wire bytes part of the list (all of it for a decoded list).
    pub const fn wire(&self) -> &'a [u8] {
        self.wire
    }

    /// The item slice part of the list (empty for a decoded list).
    pub const fn items(&self) -> &'a [T] {
        self.items
    }

    pub const fn is_empty(&self) -> bool {
        self.wire.is_empty() && self.items.is_empty()
    }

    /// Number of items (walks the wire bytes of a decoded list).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn iter(&self) -> ListIter<'a, T> {
        ListIter {
            wire: self.wire,
            items: self.items.iter(),
            _item: PhantomData,
        }
    }

    /// Validates `wire` as a sequence of items with `read`, returning it as a list.
    pub(crate) fn decode(
        wire: &'a [u8],
        mut read: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Self, DecodeError> {
        let mut r = Reader::new(wire);
        while !r.is_empty() {
            read(&mut r)?;
        }
        Ok(Self::with_wire(wire, &[]))
    }
}

impl<'a, T: ListItem<'a>> Default for List<'a, T> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<'a, T: ListItem<'a>> IntoIterator for List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T: ListItem<'a>> IntoIterator for &List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Two lists are equal when they hold equal items in the same order, however each is stored.
impl<'a, T: ListItem<'a> + PartialEq> PartialEq for List<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a, T: ListItem<'a> + Eq> Eq for List<'a, T> {}

impl<'a, T: ListItem<'a> + fmt::Debug> fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`List`].
#[derive(Clone, Debug)]
pub struct ListIter<'a, T> {
    wire: &'a [u8],
    items: core::slice::Iter<'a, T>,
    _item: PhantomData<T>,
}

impl<'a, T: ListItem<'a>> Iterator for ListIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if !self.wire.is_empty() {
            match T::next_from(&mut self.wire) {
                Some(item) => return Some(item),
                None => self.wire = &[],
            }
        }
        self.items.next().copied()
    }
}
